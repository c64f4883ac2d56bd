-- Schema version 17: a purge counts every pending task it took that ends cancelled, also one that
-- the cascade of another task of the same step cancelled first (a chain of dependents: the count
-- was 1 to 3 for a chain of 3, by the order of the rows). purge_step is otherwise version 13's.
CREATE OR REPLACE FUNCTION worq.purge_step(q text, budget integer, first boolean) RETURNS integer[]
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
  n integer := 0;
  taken integer := 0;
  waiting integer := -1;
  now bigint := worq.now_ms();
  s text;
  tid text;
  ids text[];
  tids tid[];
  plain text[];
  ptids tid[];
  ended text[];
  origins text[];
  outcomes text[];
BEGIN
  PERFORM worq.lock(q);
  IF first THEN
    SELECT count(*) INTO waiting FROM worq.tasks
      WHERE queue = q AND state IN ('pending', 'enqueued', 'delayed', 'held');
  END IF;
  -- Pending first, one by one: a dependent cancelled before its argument is not made ready by its
  -- cascade, and cancel_one drops its argument slots and links.
  -- The loop reads the rows pending when it began: a chain of them ends together (cancelling one
  -- cascades to the others), so each is counted once it is cancelled, whichever went first.
  FOR tid IN SELECT id FROM worq.tasks WHERE queue = q AND state = 'pending' LIMIT budget LOOP
    taken := taken + 1;
    IF worq.cancel_one(q, tid, worq.now_ms()) OR NOT EXISTS (SELECT 1 FROM worq.tasks t
        WHERE t.queue = q AND t.id = tid
          AND NOT (t.state = 'done' AND starts_with(t.outcome, 'k'))) THEN
      n := n + 1;
    END IF;
  END LOOP;
  FOREACH s IN ARRAY ARRAY['enqueued', 'delayed', 'held'] LOOP
    EXIT WHEN taken >= budget;
    SELECT array_agg(l.id), array_agg(l.ctid) INTO ids, tids FROM (
      SELECT t.id, t.ctid FROM worq.tasks t WHERE t.queue = q AND t.state = s
      LIMIT budget - taken FOR UPDATE OF t
    ) l;
    CONTINUE WHEN ids IS NULL;
    taken := taken + cardinality(ids);
    -- A new statement, so a dependent registered on one of them before its lock was taken is
    -- seen: that task goes through cancel_one, which cascades to it.
    SELECT coalesce(array_agg(u.id ORDER BY u.k), '{}'), coalesce(array_agg(u.tid ORDER BY u.k), '{}')
      INTO plain, ptids
      FROM unnest(ids, tids) WITH ORDINALITY AS u(id, tid, k)
      JOIN worq.tasks t ON t.ctid = u.tid
      WHERE t.cache_key IS NULL
        AND NOT EXISTS (SELECT 1 FROM worq.deps d WHERE d.queue = q AND d.id = u.id);
    IF cardinality(plain) > 0 THEN
      WITH f AS (
        SELECT u.tid, u.k FROM unnest(ptids) WITH ORDINALITY AS u(tid, k)
      ), kept AS (
        -- The outcome as cancelled_outcome() makes it, written out: that function is not inlined
        -- (its body is not immutable), and a call of it a task is a statement of its own.
        UPDATE worq.tasks t SET state = 'done',
          outcome = 'k' || jsonb_build_object('taskName', t.name, 'queue', q, 'taskId', t.id)::text,
          finish_tag = NULL, expires_at = now + t.result_timeout, token = NULL,
          lease_until = NULL, finished_at = now, held_by = NULL, holds = NULL
        FROM f WHERE t.ctid = f.tid AND NOT t.ignore_result
        RETURNING t.id, t.name, t.attempt, t.worker_id, t.started_at, t.origin, t.outcome, f.k
      ), dropped AS (
        DELETE FROM worq.tasks t USING f
        WHERE t.ctid = f.tid AND t.ignore_result
        RETURNING t.id, t.name, t.attempt, t.worker_id, t.started_at, NULL::text AS origin,
          'k' || jsonb_build_object('taskName', t.name, 'queue', q, 'taskId', t.id)::text AS outcome,
          f.k
      ), gone AS (
        SELECT * FROM kept UNION ALL SELECT * FROM dropped
      ), logged AS (
        -- One inbox row: the events as finish_one writes them, and a count of each.
        INSERT INTO worq.inbox (queue, body)
        SELECT q, json_build_object(
          'es', json_agg(json_strip_nulls(json_build_object('type', 'cancelled', 'id', g.id,
              'name', g.name, 'time', now, 'attempt', CASE WHEN g.attempt > 0 THEN g.attempt END,
              'workerId', g.worker_id, 'ms', now - g.started_at, 'outcome', g.outcome))
            ORDER BY g.k),
          'ms', json_agg(json_build_object('k', 'k', 't', now) ORDER BY g.k))
        FROM gone g HAVING count(*) > 0
      )
      SELECT array_agg(g.id ORDER BY g.k), array_agg(g.origin ORDER BY g.k),
          array_agg(g.outcome ORDER BY g.k)
        INTO ended, origins, outcomes FROM gone g;
      n := n + coalesce(cardinality(ended), 0);
      -- Each outcome to the instance that enqueued its task, as deliver() sends it (inline when
      -- it fits a notification, else its address).
      PERFORM pg_notify('@schema@.o.' || d.origin, CASE WHEN octet_length(d.m) < 7800 THEN d.m
          ELSE json_build_array(q, d.id, left(d.outcome, 1))::text END)
        FROM (SELECT u.id, u.origin, u.outcome, CASE WHEN octet_length(u.outcome) < 7800
            THEN json_build_array(q, u.id, u.outcome)::text END AS m
          FROM unnest(ended, origins, outcomes) AS u(id, origin, outcome)
          WHERE u.origin IS NOT NULL) d;
    END IF;
    -- The others (dependents to cascade to, a cache key's flight to end), one by one.
    FOR tid IN SELECT u.id FROM unnest(ids) WITH ORDINALITY AS u(id, k)
        WHERE u.id <> ALL (plain) ORDER BY u.k LOOP
      IF worq.cancel_one(q, tid, worq.now_ms()) THEN n := n + 1; END IF;
    END LOOP;
  END LOOP;
  RETURN ARRAY[n, taken, waiting];
END $$;
