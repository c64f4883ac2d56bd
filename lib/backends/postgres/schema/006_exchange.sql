-- Schema version 2: folding off most exchanges. An exchange takes the queue's lock without
-- folding the inbox (hold), and folds only when the last fold is FOLD_MS old (the column
-- queues.folded_at): a fold per exchange cost about 16 µs per event against 11 in a larger set,
-- and a fold left to the sweep alone would hold the lock for a whole sweep interval's records.
-- The sweep, the readers of events and metrics and the operations that change settings still fold
-- at once (lock). Statements that would change nothing are skipped after a look-up in their
-- partial index: ending with no finishes (end_plain), promoting delayed tasks when none is due and
-- reserving from an empty line (reserve).

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

-- Ends, set by set, the finishes of `done` that are plain outcomes: the task is processing under
-- that token and holds no limit slot, has no cache entry to store and no dependent. Their rows are
-- locked first (FOR UPDATE, which an enqueue reading one as an argument FOR KEY SHARE waits for,
-- and the other way round); the next statements see the dependents such an enqueue committed
-- meanwhile, and leave those tasks to finish() with the rest. One UPDATE (one DELETE for
-- ignoreResult tasks) ends them, one inbox row holds their events and counts, and each outcome is
-- delivered as finish() does. Returns the ids it ended.
CREATE OR REPLACE FUNCTION worq.end_plain(q text, done jsonb, now bigint) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  plain text[];
  delivered bigint;
BEGIN
  IF jsonb_array_length(done) = 0 THEN RETURN '{}'; END IF;
  SELECT coalesce(array_agg(id), '{}') INTO plain FROM (
    SELECT t.id FROM worq.tasks t
    JOIN jsonb_to_recordset(done) AS x(id text, token text, outcome text, "retryAt" bigint,
      release boolean) ON t.queue = q AND t.id = x.id
    WHERE x.outcome IS NOT NULL AND x."retryAt" IS NULL AND NOT coalesce(x.release, false)
      AND t.state = 'processing' AND t.token = x.token AND t.holds IS NULL AND t.cache_key IS NULL
    FOR UPDATE OF t
  ) locked;
  IF cardinality(plain) = 0 THEN RETURN plain; END IF;
  plain := ARRAY(SELECT unnest(plain) EXCEPT SELECT id FROM worq.deps
    WHERE queue = q AND id = ANY (plain));
  IF cardinality(plain) = 0 THEN RETURN plain; END IF;
  WITH f AS (
    SELECT * FROM ROWS FROM (jsonb_to_recordset(done) AS (id text, token text, outcome text,
      "runMs" bigint, "waitMs" bigint)) WITH ORDINALITY AS x
    WHERE x.id = ANY (plain)
  ), kept AS (
    UPDATE worq.tasks t SET state = 'done', outcome = f.outcome, finish_tag = f.token,
      expires_at = now + t.result_timeout, token = NULL, lease_until = NULL, finished_at = now,
      held_by = NULL, holds = NULL,
      payload = CASE WHEN left(f.outcome, 1) = 'c' THEN '' ELSE t.payload END
    FROM f WHERE t.queue = q AND t.id = ANY (plain) AND t.id = f.id AND NOT t.ignore_result
    RETURNING t.id, t.name, t.attempt, t.worker_id, t.started_at, t.origin, f.outcome,
      f.ordinality, f."runMs", f."waitMs"
  ), dropped AS (
    DELETE FROM worq.tasks t USING f
    WHERE t.queue = q AND t.id = ANY (plain) AND t.id = f.id AND t.ignore_result
    RETURNING t.id, t.name, t.attempt, t.worker_id, t.started_at, NULL::text AS origin,
      f.outcome, f.ordinality, f."runMs", f."waitMs"
  ), ended AS (
    SELECT * FROM kept UNION ALL SELECT * FROM dropped
  ), logged AS (
    INSERT INTO worq.inbox (queue, body)
    SELECT q, jsonb_build_object(
      'es', jsonb_agg(jsonb_build_object('type', CASE left(e.outcome, 1) WHEN 'c' THEN 'completed'
          WHEN 'f' THEN 'failed' WHEN 'x' THEN 'expired' ELSE 'cancelled' END,
          'id', e.id, 'name', e.name, 'time', now)
        || CASE WHEN e.attempt > 0 THEN jsonb_build_object('attempt', e.attempt) ELSE '{}' END
        || CASE WHEN e.worker_id IS NOT NULL THEN jsonb_build_object('workerId', e.worker_id)
          ELSE '{}' END
        || CASE WHEN e.started_at IS NOT NULL THEN jsonb_build_object('ms', now - e.started_at)
          ELSE '{}' END
        || CASE WHEN left(e.outcome, 1) <> 'c' THEN jsonb_build_object('outcome', e.outcome)
          ELSE '{}' END
        ORDER BY e.ordinality),
      'ms', jsonb_agg(jsonb_build_object('k', left(e.outcome, 1), 't', now)
        || CASE WHEN e."runMs" IS NOT NULL OR e."waitMs" IS NOT NULL
          THEN jsonb_build_object('run', e."runMs", 'w', e."waitMs") ELSE '{}' END
        ORDER BY e.ordinality))
    FROM ended e HAVING count(*) > 0
  )
  -- Each outcome to the instance that enqueued its task, as deliver() sends it (inline when it
  -- fits a notification, else its address).
  SELECT ARRAY(SELECT e.id FROM ended e), count(pg_notify('@schema@.o.' || e.origin,
      CASE WHEN octet_length(n.m) < 7800 THEN n.m
        ELSE jsonb_build_array(q, e.id, left(e.outcome, 1))::text END))
    INTO plain, delivered
    FROM ended e LEFT JOIN LATERAL (SELECT CASE WHEN octet_length(e.outcome) < 7800
      THEN jsonb_build_array(q, e.id, e.outcome)::text END AS m) n ON true
    WHERE e.origin IS NOT NULL;
  RETURN plain;
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
  ended := worq.end_plain(q, done, now);
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
