-- Schema version 2: folding off most exchanges. An exchange takes the queue's lock without
-- folding the inbox (hold), and folds only when the last fold is FOLD_MS old (the column
-- queues.folded_at): a fold per exchange cost about 16 µs per event against 11 in a larger set,
-- and a fold left to the sweep alone would hold the lock for a whole sweep interval's records.
-- The sweep, the readers of events and metrics and the operations that change settings still fold
-- at once (lock). Statements that would change nothing are skipped: ending with no finishes
-- (exchange does not call end_plain), and, after a look-up in their partial index, promoting
-- delayed tasks when none is due and reserving from an empty line (reserve).

ALTER TABLE worq.queues ADD COLUMN folded_at bigint NOT NULL DEFAULT 0;

-- Takes the queue's row lock (the row is made on first use), without folding its inbox: what an
-- exchange takes, so that folding stays off the path every task takes.
CREATE OR REPLACE FUNCTION worq.hold(q text) RETURNS worq.queues LANGUAGE plpgsql AS $$
DECLARE
  r worq.queues;
BEGIN
  SELECT * INTO r FROM worq.queues WHERE name = q FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO worq.queues (name) VALUES (q) ON CONFLICT DO NOTHING;
    SELECT * INTO r FROM worq.queues WHERE name = q FOR UPDATE;
  END IF;
  RETURN r;
END $$;

-- Takes the queue's row lock and folds its inbox (the sweep, readers of events and metrics, and
-- the operations that change the queue's settings).
CREATE OR REPLACE FUNCTION worq.lock(q text) RETURNS worq.queues LANGUAGE plpgsql AS $$
DECLARE
  r worq.queues := worq.hold(q);
BEGIN
  PERFORM worq.flush(r);
  SELECT * INTO r FROM worq.queues WHERE name = q;
  RETURN r;
END $$;

-- Reserves up to `max` ready tasks for `worker` (none while paused).
CREATE OR REPLACE FUNCTION worq.reserve(qr worq.queues, worker text, max integer, now bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  q text := qr.name;
  out jsonb := '[]';
  r worq.tasks;
  blocked jsonb;
BEGIN
  IF qr.paused OR max <= 0 THEN RETURN out; END IF;
  -- Due delayed tasks join the back of their line. (Each step is looked for first: a plain
  -- look-up of an empty index costs a tenth of a statement that would change nothing.)
  IF EXISTS (SELECT 1 FROM worq.tasks WHERE queue = q AND state = 'delayed' AND due_at <= now) THEN
    UPDATE worq.tasks t SET state = 'enqueued', ready_at = t.due_at, due_at = NULL,
      line_seq = nextval('worq.line_seq')
    FROM (SELECT id FROM worq.tasks WHERE queue = q AND state = 'delayed' AND due_at <= now
          ORDER BY due_at, line_seq FOR UPDATE) due
    WHERE t.queue = q AND t.id = due.id;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM worq.tasks WHERE queue = q AND state = 'enqueued') THEN
    RETURN out;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM worq.limits WHERE queue = q) THEN
    WITH picked AS (
      SELECT id FROM worq.tasks WHERE queue = q AND state = 'enqueued'
      ORDER BY priority, line_seq LIMIT max FOR NO KEY UPDATE SKIP LOCKED
    ), took AS (
      UPDATE worq.tasks t SET state = 'processing', attempt = t.attempt + 1,
        token = worker || ':' || nextval('worq.token_seq'),
        lease_until = now + worq.lease_ms(t.heartrate), started_at = now, worker_id = worker
      FROM picked WHERE t.queue = q AND t.id = picked.id
      RETURNING t.*
    ), logged AS (
      -- One inbox row for the `started` events of the whole reservation.
      INSERT INTO worq.inbox (queue, body)
      SELECT q, jsonb_build_object('es', jsonb_agg(jsonb_build_object('type', 'started',
          'id', took.id, 'name', took.name, 'time', now, 'attempt', took.attempt,
          'workerId', worker) ORDER BY took.priority, took.line_seq))
      FROM took HAVING count(*) > 0 AND qr.events
    )
    SELECT coalesce(jsonb_agg(worq.reserved(took) ORDER BY took.priority, took.line_seq), '[]')
      INTO out FROM took;
    RETURN out;
  END IF;
  WHILE jsonb_array_length(out) < max LOOP
    SELECT * INTO r FROM worq.tasks WHERE queue = q AND state = 'enqueued'
      ORDER BY priority, line_seq LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    EXIT WHEN NOT FOUND;
    blocked := worq.take_slots(q, r.id, r.name, now);
    IF blocked ? 'limit' THEN
      UPDATE worq.tasks SET state = 'held', held_by = blocked->>'limit',
        line_seq = nextval('worq.line_seq') WHERE queue = q AND id = r.id;
      CONTINUE;
    ELSIF blocked ? 'until' THEN
      UPDATE worq.tasks SET state = 'delayed', due_at = (blocked->>'until')::bigint
        WHERE queue = q AND id = r.id;
      CONTINUE;
    END IF;
    UPDATE worq.tasks SET state = 'processing', attempt = attempt + 1,
      token = worker || ':' || nextval('worq.token_seq'),
      lease_until = now + worq.lease_ms(heartrate), started_at = now, worker_id = worker,
      holds = CASE WHEN blocked ? 'holds' THEN ARRAY(SELECT jsonb_array_elements_text(blocked->'holds')) END
    WHERE queue = q AND id = r.id RETURNING * INTO r;
    PERFORM worq.task_event('started', r, now,
      jsonb_build_object('attempt', r.attempt, 'workerId', worker));
    out := out || jsonb_build_array(worq.reserved(r));
  END LOOP;
  RETURN out;
END $$;

-- Finishes `done` (a JSON array of Finish), then reserves up to `max`: {stale, reserved, nextDueIn}.
CREATE OR REPLACE FUNCTION worq.exchange(q text, worker text, done jsonb, max integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  qr worq.queues := worq.hold(q);
  now bigint := worq.now_ms();
  f record;
  r worq.tasks;
  found_ boolean;
  stale text[] := '{}';
  ended text[];
  timing jsonb;
  reserved jsonb;
  due bigint;
  res jsonb;
BEGIN
  -- FOLD_MS = 100: a running queue's inbox holds at most about a tenth of a second of records.
  IF now - qr.folded_at >= 100 THEN
    PERFORM worq.flush(qr);
    UPDATE worq.queues SET folded_at = now WHERE name = q;
  END IF;
  ended := CASE WHEN jsonb_array_length(done) = 0 THEN '{}'
    ELSE worq.end_plain(q, done, now) END;
  FOR f IN SELECT * FROM jsonb_to_recordset(done)
    AS x(id text, token text, outcome text, "retryAt" bigint, release boolean, error jsonb,
      "runMs" bigint, "waitMs" bigint)
  LOOP
    CONTINUE WHEN f.id = ANY (ended);
    -- Wait and run times as the worker measured them (a release never ran): counted with the
    -- retry or the outcome, or on their own for a finish refused as stale.
    timing := CASE WHEN NOT coalesce(f.release, false)
        AND (f."runMs" IS NOT NULL OR f."waitMs" IS NOT NULL)
      THEN jsonb_build_object('run', f."runMs", 'w', f."waitMs") ELSE '{}' END;
    SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = f.id FOR UPDATE;
    found_ := FOUND;
    IF NOT found_ OR r.state <> 'processing' OR r.token IS DISTINCT FROM f.token THEN
      IF timing <> '{}' THEN PERFORM worq.emit(q, jsonb_build_object('t', now) || timing); END IF;
      -- Quiet: a release (the task never started), or the end of a run cancelled as it ran.
      IF NOT coalesce(f.release, false) AND NOT (found_ AND r.state = 'done'
          AND r.finish_tag IS NOT DISTINCT FROM f.token) THEN
        stale := stale || f.id;
      END IF;
      CONTINUE;
    END IF;
    IF coalesce(f.release, false) THEN
      PERFORM worq.free_slots(q, f.id, r.holds);
      UPDATE worq.tasks SET state = 'enqueued', token = NULL, lease_until = NULL, holds = NULL,
        attempt = attempt - 1, line_seq = -nextval('worq.line_seq') WHERE queue = q AND id = f.id;
      PERFORM worq.wake(q);
    ELSIF f."retryAt" IS NOT NULL THEN
      PERFORM worq.retry(q, f.id, f."retryAt", jsonb_build_object('error', f.error), now, timing);
    ELSE
      PERFORM worq.finish(q, f.id, f.outcome, now, false, f.token, timing);
    END IF;
  END LOOP;
  reserved := worq.reserve(qr, worker, max, now);
  res := jsonb_build_object('stale', to_jsonb(stale), 'reserved', reserved);
  IF jsonb_array_length(reserved) < max THEN
    SELECT min(due_at) INTO due FROM worq.tasks WHERE queue = q AND state = 'delayed';
    IF due IS NOT NULL THEN res := res || jsonb_build_object('nextDueIn', greatest(0, due - now)); END IF;
  END IF;
  RETURN res;
END $$;
