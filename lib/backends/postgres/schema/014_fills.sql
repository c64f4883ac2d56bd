-- Schema version 10: wide and deep graphs.
--
-- An argument slot filled after the enqueue is a row of its own (table arg_slots) until its task
-- is ready. A fill read the dependent's whole row and wrote its whole array of slots, as long as
-- its arguments, at every argument's end: a task of n Deferred arguments cost its fills n² (7 500
-- arguments: 6.7–8.3 s from the workers' start to the value, against 0.9 s for the same 7 500
-- tasks alone). Now a fill reads the dependent's state, inserts its slot and counts it off
-- `missing` (the row's long columns are not rewritten), and the last fill merges the rows into
-- `slots` once, so that everything after (the cache key, the reservation) reads `slots` as before.
-- A task that ends while pending drops its rows (finish_one).
--
-- The cascade is a loop instead of a recursion. finish() filled or failed each dependent, and a
-- dependent that failed with it was finished by a nested finish(): a chain of about 300 tasks
-- whose first failed, or was cancelled, exceeded the server's stack depth (max_stack_depth), and
-- the statement failed every time, so the worker's exchange that carried the failure failed with
-- it and the queue stopped. Now finish() ends its task (finish_one) and cascade() goes through the
-- dependents with a stack of its own, depth first in the order they were registered, as before.

CREATE TABLE IF NOT EXISTS worq.arg_slots (
  queue text NOT NULL,
  id text NOT NULL,
  slot integer NOT NULL,
  outcome text NOT NULL,
  PRIMARY KEY (queue, id, slot)
);

-- Records an outcome, delivers it and frees limit slots: finish() of version 1 without the
-- dependents, which cascade() goes through. False when the task is not there.
-- `timing`: the run and wait times the worker measured, counted with the outcome.
CREATE OR REPLACE FUNCTION worq.finish_one(q text, tid text, outcome text, now bigint,
  hit boolean, tag text, timing jsonb DEFAULT '{}') RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  r worq.tasks;
  kind text := left(outcome, 1);
  woke boolean;
  ttl bigint;
  extra jsonb := '{}';
BEGIN
  SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = tid FOR UPDATE;
  IF NOT FOUND THEN RETURN false; END IF;
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
    UPDATE worq.tasks SET state = 'done', outcome = finish_one.outcome, finish_tag = tag,
      expires_at = now + r.result_timeout, token = NULL, lease_until = NULL, finished_at = now,
      cached = tasks.cached OR hit, held_by = NULL, holds = NULL,
      payload = CASE WHEN kind = 'c' THEN '' ELSE payload END
    WHERE queue = q AND id = tid;
    PERFORM worq.deliver(q, tid, r.origin,
      CASE WHEN hit THEN 'C' || substr(outcome, 2) ELSE outcome END);
  END IF;
  IF woke THEN PERFORM worq.wake(q); END IF;
  RETURN true;
END $$;

-- Fills, fails or frees the dependents of task `tid`, which ended with `outcome`, and the
-- dependents of those that end with it, depth first in the order each task's dependents were
-- registered: a stack of the dependents still to go through (pushed in reverse order, so that
-- the first registered is taken first), instead of the call stack.
CREATE OR REPLACE FUNCTION worq.cascade(q text, tid text, outcome text, now bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  sq text[] := '{}';
  sid text[] := '{}';
  sslot integer[] := '{}';
  sout text[] := '{}';
  n integer := 0;
  d record;
  cq text := q;
  cid text := tid;
  ended text := outcome;
BEGIN
  LOOP
    IF ended IS NOT NULL THEN
      FOR d IN WITH gone AS (DELETE FROM worq.deps WHERE queue = cq AND id = cid RETURNING *)
          SELECT dq, did, slot FROM gone ORDER BY seq DESC LOOP
        n := n + 1;
        sq[n] := d.dq;
        sid[n] := d.did;
        sslot[n] := d.slot;
        sout[n] := ended;
      END LOOP;
    END IF;
    EXIT WHEN n = 0;
    cq := sq[n];
    cid := sid[n];
    IF sslot[n] < 0 THEN ended := worq.follow(cq, cid, sout[n], now);
    ELSE ended := worq.fill(cq, cid, sslot[n], sout[n], now);
    END IF;
    n := n - 1;
  END LOOP;
END $$;

-- Ends a task and goes down the graph from it.
CREATE OR REPLACE FUNCTION worq.finish(q text, tid text, outcome text, now bigint, hit boolean,
  tag text, timing jsonb DEFAULT '{}') RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF worq.finish_one(q, tid, outcome, now, hit, tag, timing) THEN
    PERFORM worq.cascade(q, tid, outcome, now);
  END IF;
END $$;

-- A task whose arguments are all there: a cache hit ends it (without its dependents: returns the
-- outcome, for the caller's cascade), a live identical call takes it as a follower, else it joins
-- the line.
CREATE OR REPLACE FUNCTION worq.ready_step(q text, tid text, now bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  r worq.tasks;
  k text;
  hit text;
  leader text;
  lstate text;
BEGIN
  SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = tid;
  IF r.cache IS NOT NULL THEN
    k := coalesce(nullif(r.cache->>'key', ''),
      worq.ready_cache_key(r.name, r.payload, r.cache->>'template', r.slots));
    UPDATE worq.tasks SET cache_key = k WHERE queue = q AND id = tid;
    hit := worq.cache_hit(q, k, now);
    IF hit IS NOT NULL THEN
      PERFORM worq.finish_one(q, tid, hit, now, true, NULL);
      RETURN hit;
    END IF;
    INSERT INTO worq.flights (queue, key, id) VALUES (q, k, tid) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
      SELECT id INTO leader FROM worq.flights WHERE queue = q AND key = k;
      SELECT state INTO lstate FROM worq.tasks WHERE queue = q AND id = leader FOR KEY SHARE;
      IF leader <> tid AND lstate IS NOT NULL AND lstate <> 'done' THEN
        INSERT INTO worq.deps (queue, id, dq, did, slot) VALUES (q, leader, q, tid, -1);
        UPDATE worq.tasks SET state = 'pending', held_by = NULL WHERE queue = q AND id = tid;
        RETURN NULL;
      END IF;
      UPDATE worq.flights SET id = tid WHERE queue = q AND key = k;
    END IF;
  END IF;
  PERFORM worq.line(q, tid, r.run_at, now);
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION worq.ready(q text, tid text, now bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  hit text := worq.ready_step(q, tid, now);
BEGIN
  IF hit IS NOT NULL THEN PERFORM worq.cascade(q, tid, hit, now); END IF;
END $$;

-- Fills slot `slot` of pending task `tid` with an argument's outcome, once; a failure with
-- onError 'fail' ends the task instead. The fill that leaves nothing missing makes it ready.
-- Returns the outcome the task ended with here (for the cascade), else NULL.
DROP FUNCTION IF EXISTS worq.fill(text, text, integer, text, bigint);
CREATE FUNCTION worq.fill(q text, tid text, slot integer, outcome text, now bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  st text;
  err text;
  left_ integer;
  arr text[];
  s record;
BEGIN
  SELECT state, on_error INTO st, err FROM worq.tasks WHERE queue = q AND id = tid FOR UPDATE;
  IF NOT FOUND OR st <> 'pending' THEN RETURN NULL; END IF;
  IF left(outcome, 1) <> 'c' AND err = 'fail' THEN
    PERFORM worq.finish_one(q, tid, outcome, now, false, NULL);
    RETURN outcome;
  END IF;
  INSERT INTO worq.arg_slots (queue, id, slot, outcome) VALUES (q, tid, fill.slot, fill.outcome)
    ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN RETURN NULL; END IF; -- filled already
  UPDATE worq.tasks SET missing = missing - 1 WHERE queue = q AND id = tid
    RETURNING missing INTO left_;
  IF left_ > 0 THEN RETURN NULL; END IF;
  SELECT slots INTO arr FROM worq.tasks WHERE queue = q AND id = tid;
  FOR s IN DELETE FROM worq.arg_slots a WHERE a.queue = q AND a.id = tid RETURNING a.slot, a.outcome
  LOOP
    arr[s.slot + 1] := s.outcome;
  END LOOP;
  UPDATE worq.tasks SET slots = arr WHERE queue = q AND id = tid;
  RETURN worq.ready_step(q, tid, now);
END $$;

-- A cache follower: ends with its leader's value (returned, for the cascade), or runs on its own
-- when the leader did not complete.
DROP FUNCTION IF EXISTS worq.follow(text, text, text, bigint);
CREATE FUNCTION worq.follow(q text, tid text, outcome text, now bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r worq.tasks;
BEGIN
  SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = tid FOR UPDATE;
  IF NOT FOUND OR r.state <> 'pending' THEN RETURN NULL; END IF;
  IF left(outcome, 1) = 'c' THEN
    PERFORM worq.finish_one(q, tid, outcome, now, true, NULL);
    RETURN outcome;
  END IF;
  PERFORM worq.line(q, tid, r.run_at, now);
  RETURN NULL;
END $$;
