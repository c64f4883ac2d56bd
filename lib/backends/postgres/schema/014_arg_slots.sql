-- Schema version 10: an argument slot filled after the enqueue is a row of its own (table
-- arg_slots) until its task is ready. A fill read the dependent's whole row and wrote its whole
-- array of slots, as long as its arguments, at every argument's end: a task of n Deferred
-- arguments cost its fills n² (7 500 arguments: 6.7–8.3 s from the workers' start to the value,
-- against 0.9 s for the same 7 500 tasks alone). Now a fill reads the dependent's state, inserts
-- its slot and counts it off `missing` (the row's long columns are not rewritten), and the last
-- fill merges the rows into `slots` once, so that everything after (the cache key, the
-- reservation) reads `slots` as before. A task that ends while pending drops its rows (finish).

CREATE TABLE IF NOT EXISTS worq.arg_slots (
  queue text NOT NULL,
  id text NOT NULL,
  slot integer NOT NULL,
  outcome text NOT NULL,
  PRIMARY KEY (queue, id, slot)
);

-- Records an outcome, delivers it, frees limit slots, and fills (or fails) the dependents. As in
-- version 1, but for the slots of a pending task (arg_slots).
-- `timing`: the run and wait times the worker measured, counted with the outcome.
CREATE OR REPLACE FUNCTION worq.finish(q text, tid text, outcome text, now bigint, hit boolean,
  tag text, timing jsonb DEFAULT '{}') RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r worq.tasks;
  kind text := left(outcome, 1);
  woke boolean;
  ttl bigint;
  extra jsonb := '{}';
  deps jsonb;
  d record;
BEGIN
  SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = tid FOR UPDATE;
  IF NOT FOUND THEN RETURN; END IF;
  -- A task that ends while it waits for arguments drops the slots filled so far (version 10).
  IF r.state = 'pending' THEN DELETE FROM worq.arg_slots WHERE queue = q AND id = tid; END IF;
  woke := worq.free_slots(q, tid, r.holds);
  IF r.cache_key IS NOT NULL THEN
    DELETE FROM worq.flights WHERE queue = q AND key = r.cache_key AND id = tid;
    IF kind = 'c' AND NOT hit AND r.cache IS NOT NULL THEN
      ttl := nullif((r.cache->>'ttl')::bigint, 0);
      IF ttl IS NULL THEN SELECT cache_ttl INTO ttl FROM worq.queues WHERE name = q; END IF;
      PERFORM worq.cache_store(q, r.cache_key, outcome, coalesce(ttl, 3600000), now);
    END IF;
  END IF;
  IF r.attempt > 0 THEN extra := extra || jsonb_build_object('attempt', r.attempt); END IF;
  IF r.worker_id IS NOT NULL THEN extra := extra || jsonb_build_object('workerId', r.worker_id); END IF;
  IF r.started_at IS NOT NULL THEN extra := extra || jsonb_build_object('ms', now - r.started_at); END IF;
  IF kind <> 'c' THEN extra := extra || jsonb_build_object('outcome', outcome); END IF;
  PERFORM worq.task_event(CASE kind WHEN 'c' THEN CASE WHEN hit THEN 'cached' ELSE 'completed' END
    WHEN 'f' THEN 'failed' WHEN 'x' THEN 'expired' ELSE 'cancelled' END, r, now, extra,
    jsonb_build_object('k', kind, 't', now) || timing);
  IF r.ignore_result THEN
    DELETE FROM worq.tasks WHERE queue = q AND id = tid;
  ELSE
    UPDATE worq.tasks SET state = 'done', outcome = finish.outcome, finish_tag = tag,
      expires_at = now + r.result_timeout, token = NULL, lease_until = NULL, finished_at = now,
      cached = tasks.cached OR hit, held_by = NULL, holds = NULL,
      payload = CASE WHEN kind = 'c' THEN '' ELSE payload END
    WHERE queue = q AND id = tid;
    PERFORM worq.deliver(q, tid, r.origin,
      CASE WHEN hit THEN 'C' || substr(outcome, 2) ELSE outcome END);
  END IF;
  IF woke THEN PERFORM worq.wake(q); END IF;
  WITH gone AS (DELETE FROM worq.deps WHERE queue = q AND id = tid RETURNING *)
  SELECT jsonb_agg(jsonb_build_object('q', dq, 'id', did, 'slot', slot) ORDER BY seq)
    INTO deps FROM gone;
  FOR d IN SELECT * FROM jsonb_to_recordset(coalesce(deps, '[]')) AS x(q text, id text, slot integer)
  LOOP
    IF d.slot < 0 THEN PERFORM worq.follow(d.q, d.id, outcome, now);
    ELSE PERFORM worq.fill(d.q, d.id, d.slot, outcome, now);
    END IF;
  END LOOP;
END $$;

-- Fills slot `slot` of pending task `tid` with an argument's outcome, once; a failure with
-- onError 'fail' ends the task instead. The fill that leaves nothing missing makes it ready.
CREATE OR REPLACE FUNCTION worq.fill(q text, tid text, slot integer, outcome text, now bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  st text;
  err text;
  left_ integer;
  arr text[];
  s record;
BEGIN
  SELECT state, on_error INTO st, err FROM worq.tasks WHERE queue = q AND id = tid FOR UPDATE;
  IF NOT FOUND OR st <> 'pending' THEN RETURN; END IF;
  IF left(outcome, 1) <> 'c' AND err = 'fail' THEN
    PERFORM worq.finish(q, tid, outcome, now, false, NULL);
    RETURN;
  END IF;
  INSERT INTO worq.arg_slots (queue, id, slot, outcome) VALUES (q, tid, fill.slot, fill.outcome)
    ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN RETURN; END IF; -- filled already
  UPDATE worq.tasks SET missing = missing - 1 WHERE queue = q AND id = tid
    RETURNING missing INTO left_;
  IF left_ > 0 THEN RETURN; END IF;
  SELECT slots INTO arr FROM worq.tasks WHERE queue = q AND id = tid;
  FOR s IN DELETE FROM worq.arg_slots a WHERE a.queue = q AND a.id = tid RETURNING a.slot, a.outcome
  LOOP
    arr[s.slot + 1] := s.outcome;
  END LOOP;
  UPDATE worq.tasks SET slots = arr WHERE queue = q AND id = tid;
  PERFORM worq.ready(q, tid, now);
END $$;
