-- Task flows shared by the operations: time, notifications, the inbox, enqueue, readiness, lines,
-- finishing and the cascade down Deferred arguments. engine.ts of memory:// does the same in TS.

CREATE OR REPLACE FUNCTION worq.now_ms() RETURNS bigint LANGUAGE sql AS
$$ SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

CREATE OR REPLACE FUNCTION worq.lease_ms(heartrate bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS
$$ SELECT 2 * heartrate + 1000 $$;

-- Wakes the queue's idle workers (delivered at commit, deduplicated within a transaction).
CREATE OR REPLACE FUNCTION worq.wake(q text) RETURNS void LANGUAGE sql AS
$$ SELECT pg_notify('@schema@.work', q) $$;

-- Tells the queue's pools (ControlMessage).
CREATE OR REPLACE FUNCTION worq.tell(q text, m jsonb) RETURNS void LANGUAGE sql AS
$$ SELECT pg_notify('@schema@.control', jsonb_build_object('q', q, 'm', m)::text) $$;

-- Delivers an outcome or progress to the instance that enqueued the task: inline when it fits a
-- notification, else only its address (the listener reads it).
CREATE OR REPLACE FUNCTION worq.deliver(q text, tid text, origin text, what text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  message text;
BEGIN
  IF origin IS NULL THEN RETURN; END IF;
  -- A notification's payload must stay under 8000 bytes, escapes included.
  IF octet_length(what) < 7800 THEN message := jsonb_build_array(q, tid, what)::text; END IF;
  IF message IS NULL OR octet_length(message) >= 7800 THEN
    message := jsonb_build_array(q, tid, left(what, 1))::text;
  END IF;
  PERFORM pg_notify('@schema@.o.' || origin, message);
END $$;

-- Appends an event or a count for the queue's next locking operation to number or fold.
CREATE OR REPLACE FUNCTION worq.emit(q text, body jsonb) RETURNS void LANGUAGE sql AS
$$ INSERT INTO worq.inbox (queue, body) VALUES (q, body) $$;

-- A task's event; `counts` (a count `k` at time `t`, a run and wait time) rides in the same inbox row.
CREATE OR REPLACE FUNCTION worq.task_event(type text, t worq.tasks, now bigint, extra jsonb,
  counts jsonb DEFAULT '{}') RETURNS void LANGUAGE sql AS
$$ SELECT worq.emit(t.queue, jsonb_build_object('e', jsonb_build_object(
     'type', type, 'id', t.id, 'name', t.name, 'time', now) || extra) || counts) $$;

CREATE OR REPLACE FUNCTION worq.expired_outcome(name text, q text, tid text, reason text,
  attempts integer) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT 'x' || (jsonb_build_object('taskName', name, 'queue', q, 'taskId', tid, 'reason', reason)
     || CASE WHEN attempts IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('attempts', attempts) END)::text $$;

CREATE OR REPLACE FUNCTION worq.cancelled_outcome(name text, q text, tid text) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT 'k' || jsonb_build_object('taskName', name, 'queue', q, 'taskId', tid)::text $$;

-- Stores one task (state pending), links or fills its argument slots; 'ok' or 'duplicate'. Takes
-- no queue lock, so it may run in the caller's own transaction. A row written by the same enqueue
-- call (`tag`: it was sent again after its reply was lost) is this task: 'ok', nothing written.
CREATE OR REPLACE FUNCTION worq.enqueue_one(q text, t jsonb, origin text, listing boolean,
  now bigint, tag text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  tid text := t->>'id';
  n integer := jsonb_array_length(t->'deps');
  old record;
  a record;
  ref jsonb;
  o text;
  s text[];
  miss integer := 0;
BEGIN
  SELECT state, expires_at, enqueue_tag INTO old FROM worq.tasks WHERE queue = q AND id = tid
    FOR UPDATE;
  IF FOUND THEN
    IF old.enqueue_tag = tag THEN RETURN 'ok'; END IF;
    IF old.state <> 'done' THEN RETURN 'duplicate'; END IF;
    DELETE FROM worq.tasks WHERE queue = q AND id = tid;
  END IF;
  INSERT INTO worq.tasks (queue, id, name, state, payload, deps, on_error, ignore_result,
    result_timeout, heartrate, attempts, backoff, run_at, timeout, priority, metadata, cache,
    trace, created_at, listed, origin, slots, enqueue_tag)
  VALUES (q, tid, t->>'name', 'pending', t->>'payload', t->'deps', t->>'onError',
    (t->>'ignoreResult')::boolean, (t->>'resultTimeout')::bigint, (t->>'heartrate')::bigint,
    (t->>'attempts')::integer, t->'backoff', (t->>'runAt')::bigint, (t->>'timeout')::bigint,
    (t->>'priority')::integer, t->>'metadata', CASE WHEN t ? 'cache' THEN t->'cache' END,
    coalesce(t->>'trace', ''), now, listing,
    CASE WHEN (t->>'ignoreResult')::boolean THEN NULL ELSE origin END,
    CASE WHEN n = 0 THEN '{}'::text[] ELSE array_fill(NULL::text, ARRAY[n]) END, tag)
  ON CONFLICT (queue, id) DO NOTHING;
  IF NOT FOUND THEN RETURN 'duplicate'; END IF;
  PERFORM worq.emit(q, jsonb_build_object('e', jsonb_build_object('type', 'enqueued', 'id', tid,
    'name', t->>'name', 'time', now)));
  s := CASE WHEN n = 0 THEN '{}'::text[] ELSE array_fill(NULL::text, ARRAY[n]) END;
  FOR i IN 0 .. n - 1 LOOP
    ref := t->'deps'->i;
    SELECT state, outcome, expires_at INTO a FROM worq.tasks
      WHERE queue = ref->>'queue' AND id = ref->>'id' FOR KEY SHARE;
    IF FOUND AND a.state <> 'done' THEN
      INSERT INTO worq.deps (queue, id, dq, did, slot) VALUES (ref->>'queue', ref->>'id', q, tid, i);
      miss := miss + 1;
      CONTINUE;
    END IF;
    IF FOUND AND a.expires_at > now THEN
      o := a.outcome;
    ELSE
      o := worq.expired_outcome('unknown', ref->>'queue', ref->>'id',
        'the argument task and its result are gone (its resultTimeout passed)', NULL);
    END IF;
    IF left(o, 1) <> 'c' AND t->>'onError' = 'fail' THEN
      PERFORM worq.finish(q, tid, o, now, false, NULL);
      RETURN 'ok';
    END IF;
    s[i + 1] := o;
  END LOOP;
  UPDATE worq.tasks SET slots = s, missing = miss WHERE queue = q AND id = tid;
  IF miss = 0 THEN PERFORM worq.ready(q, tid, now); END IF;
  RETURN 'ok';
END $$;

-- Enqueues a batch (a JSON array of NewTask) written by one call (`tag`) task by task; 'ok' or
-- 'duplicate' per task, in order. (A batch of plain calls is written by one INSERT … SELECT
-- instead: enqueue.ts.)
CREATE OR REPLACE FUNCTION worq.enqueue(q text, batch jsonb, origin text, tag text)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  now bigint := worq.now_ms();
  listing boolean;
  t jsonb;
  res text[] := '{}';
  seen text[] := '{}';
BEGIN
  SELECT queues.listing INTO listing FROM worq.queues WHERE name = q;
  FOR t IN SELECT * FROM jsonb_array_elements(batch) LOOP
    -- A second task of the batch with the same id is a duplicate, though its row bears the tag.
    IF t->>'id' = ANY (seen) THEN
      res := res || 'duplicate'::text;
      CONTINUE;
    END IF;
    seen := seen || (t->>'id');
    res := res || worq.enqueue_one(q, t, origin, coalesce(listing, true), now, tag);
  END LOOP;
  RETURN res;
END $$;

-- Puts a task in the wait line of its priority, or in the delayed set until `due`.
CREATE OR REPLACE FUNCTION worq.line(q text, tid text, due bigint, now bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF due > now THEN
    UPDATE worq.tasks SET state = 'delayed', due_at = due, held_by = NULL,
      line_seq = nextval('worq.line_seq') WHERE queue = q AND id = tid;
  ELSE
    UPDATE worq.tasks SET state = 'enqueued', ready_at = now, due_at = NULL, held_by = NULL,
      line_seq = nextval('worq.line_seq') WHERE queue = q AND id = tid;
  END IF;
  PERFORM worq.wake(q);
END $$;

-- A task whose arguments are all there: a cache hit ends it, a live identical call takes it as a
-- follower, else it joins the line.
CREATE OR REPLACE FUNCTION worq.ready(q text, tid text, now bigint) RETURNS void
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
      PERFORM worq.finish(q, tid, hit, now, true, NULL);
      RETURN;
    END IF;
    INSERT INTO worq.flights (queue, key, id) VALUES (q, k, tid) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
      SELECT id INTO leader FROM worq.flights WHERE queue = q AND key = k;
      SELECT state INTO lstate FROM worq.tasks WHERE queue = q AND id = leader FOR KEY SHARE;
      IF leader <> tid AND lstate IS NOT NULL AND lstate <> 'done' THEN
        INSERT INTO worq.deps (queue, id, dq, did, slot) VALUES (q, leader, q, tid, -1);
        UPDATE worq.tasks SET state = 'pending', held_by = NULL WHERE queue = q AND id = tid;
        RETURN;
      END IF;
      UPDATE worq.flights SET id = tid WHERE queue = q AND key = k;
    END IF;
  END IF;
  PERFORM worq.line(q, tid, r.run_at, now);
END $$;

-- Records an outcome, delivers it, frees limit slots, and fills (or fails) the dependents.
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

CREATE OR REPLACE FUNCTION worq.fill(q text, tid text, slot integer, outcome text, now bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r worq.tasks;
BEGIN
  SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = tid FOR UPDATE;
  IF NOT FOUND OR r.state <> 'pending' OR r.slots[slot + 1] IS NOT NULL THEN RETURN; END IF;
  IF left(outcome, 1) <> 'c' AND r.on_error = 'fail' THEN
    PERFORM worq.finish(q, tid, outcome, now, false, NULL);
    RETURN;
  END IF;
  r.slots[slot + 1] := outcome;
  UPDATE worq.tasks SET slots = r.slots, missing = missing - 1 WHERE queue = q AND id = tid;
  IF r.missing = 1 THEN PERFORM worq.ready(q, tid, now); END IF;
END $$;

-- A cache follower: ends with its leader's value, or runs on its own when the leader did not
-- complete.
CREATE OR REPLACE FUNCTION worq.follow(q text, tid text, outcome text, now bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r worq.tasks;
BEGIN
  SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = tid FOR UPDATE;
  IF NOT FOUND OR r.state <> 'pending' THEN RETURN; END IF;
  IF left(outcome, 1) = 'c' THEN PERFORM worq.finish(q, tid, outcome, now, true, NULL);
  ELSE PERFORM worq.line(q, tid, r.run_at, now);
  END IF;
END $$;
