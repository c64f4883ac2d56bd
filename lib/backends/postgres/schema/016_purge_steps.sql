-- Schema version 12: a purge in steps. purge() cancelled every waiting task of a queue in one
-- transaction under the queue's lock: 100 000 tasks took 13.5 s, during which the queue's workers
-- and callers waited, and a statement timeout would roll the whole purge back. purge_step()
-- cancels up to `budget` of them (pending first, then enqueued, delayed and held, each through its
-- partial index) and commits; the caller repeats it (lib/backends/postgres/postgres.ts). `first`:
-- also count the waiting tasks, which bounds how many the repeated steps take. Returns
-- {cancelled, taken, waiting at the first step (-1 after)}. purge() stays for processes of
-- version 11.
CREATE FUNCTION worq.purge_step(q text, budget integer, first boolean) RETURNS integer[]
LANGUAGE plpgsql AS $$
DECLARE
  n integer := 0;
  taken integer := 0;
  waiting integer := -1;
  s text;
  tid text;
BEGIN
  PERFORM worq.lock(q);
  IF first THEN
    SELECT count(*) INTO waiting FROM worq.tasks
      WHERE queue = q AND state IN ('pending', 'enqueued', 'delayed', 'held');
  END IF;
  -- Pending first: a dependent cancelled before its argument is not made ready by its cascade.
  FOREACH s IN ARRAY ARRAY['pending', 'enqueued', 'delayed', 'held'] LOOP
    EXIT WHEN taken >= budget;
    FOR tid IN SELECT id FROM worq.tasks WHERE queue = q AND state = s LIMIT budget - taken LOOP
      taken := taken + 1;
      IF worq.cancel_one(q, tid, worq.now_ms()) THEN n := n + 1; END IF;
    END LOOP;
  END LOOP;
  RETURN ARRAY[n, taken, waiting];
END $$;
