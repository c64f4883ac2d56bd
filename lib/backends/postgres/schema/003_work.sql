-- The worker's side: the queue lock, reserving (FOR NO KEY UPDATE SKIP LOCKED), exchange (finish and
-- reserve in one call), retries, renewals, progress, cancel, purge and the sweep.

-- Takes the queue's row lock (the row is made on first use) and folds its inbox.
CREATE OR REPLACE FUNCTION worq.lock(q text) RETURNS worq.queues LANGUAGE plpgsql AS $$
DECLARE
  r worq.queues;
BEGIN
  SELECT * INTO r FROM worq.queues WHERE name = q FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO worq.queues (name) VALUES (q) ON CONFLICT DO NOTHING;
    SELECT * INTO r FROM worq.queues WHERE name = q FOR UPDATE;
  END IF;
  PERFORM worq.flush(r);
  SELECT * INTO r FROM worq.queues WHERE name = q;
  RETURN r;
END $$;

-- Puts a task back after a failed run or a lapsed lease, delayed until `at`.
CREATE OR REPLACE FUNCTION worq.retry(q text, tid text, at bigint, err jsonb, now bigint,
  timing jsonb DEFAULT '{}') RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r worq.tasks;
  extra jsonb;
BEGIN
  SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = tid FOR UPDATE;
  PERFORM worq.free_slots(q, tid, r.holds);
  UPDATE worq.tasks SET token = NULL, lease_until = NULL, holds = NULL WHERE queue = q AND id = tid;
  extra := jsonb_build_object('attempt', r.attempt, 'delay', greatest(0, at - now)) || err;
  IF r.worker_id IS NOT NULL THEN extra := extra || jsonb_build_object('workerId', r.worker_id); END IF;
  IF r.started_at IS NOT NULL THEN extra := extra || jsonb_build_object('ms', now - r.started_at); END IF;
  PERFORM worq.task_event('retrying', r, now, extra,
    jsonb_build_object('k', 'r', 't', now) || timing);
  PERFORM worq.line(q, tid, at, now);
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
  -- Due delayed tasks join the back of their line.
  UPDATE worq.tasks t SET state = 'enqueued', ready_at = t.due_at, due_at = NULL,
    line_seq = nextval('worq.line_seq')
  FROM (SELECT id FROM worq.tasks WHERE queue = q AND state = 'delayed' AND due_at <= now
        ORDER BY due_at, line_seq FOR UPDATE) due
  WHERE t.queue = q AND t.id = due.id;
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

-- A reserved task as the worker gets it.
CREATE OR REPLACE FUNCTION worq.reserved(t worq.tasks) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', t.id, 'name', t.name, 'payload', t.payload, 'deps', t.deps,
    'onError', t.on_error, 'ignoreResult', t.ignore_result, 'resultTimeout', t.result_timeout,
    'heartrate', t.heartrate, 'attempts', t.attempts, 'backoff', t.backoff, 'runAt', t.run_at,
    'timeout', t.timeout, 'priority', t.priority, 'metadata', t.metadata, 'cache', t.cache,
    'trace', t.trace, 'token', t.token, 'attempt', t.attempt, 'slots', to_jsonb(t.slots),
    'dueAt', coalesce(t.ready_at, t.created_at))
$$;

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
  qr worq.queues := worq.lock(q);
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

-- Extends leases (a JSON array of Lease); returns the ids whose lease was lost.
CREATE OR REPLACE FUNCTION worq.renew(q text, leases jsonb) RETURNS text[] LANGUAGE sql AS $$
  WITH l AS (SELECT * FROM jsonb_to_recordset(leases) AS x(id text, token text, heartrate bigint)),
  kept AS (
    UPDATE worq.tasks t SET lease_until = worq.now_ms() + worq.lease_ms(l.heartrate)
    FROM l WHERE t.queue = q AND t.id = l.id AND t.state = 'processing' AND t.token = l.token
    RETURNING t.id
  )
  SELECT coalesce(array_agg(l.id), '{}') FROM l WHERE l.id NOT IN (SELECT id FROM kept)
$$;

CREATE OR REPLACE FUNCTION worq.progress(q text, updates jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  now bigint := worq.now_ms();
  u record;
  r worq.tasks;
BEGIN
  FOR u IN SELECT * FROM jsonb_to_recordset(updates) AS x(id text, token text, value text) LOOP
    UPDATE worq.tasks SET progress = u.value
      WHERE queue = q AND id = u.id AND state = 'processing' AND token = u.token
      RETURNING * INTO r;
    CONTINUE WHEN NOT FOUND;
    PERFORM worq.task_event('progress', r, now, jsonb_build_object('progress', u.value,
      'attempt', r.attempt) || CASE WHEN r.worker_id IS NULL THEN '{}'::jsonb
        ELSE jsonb_build_object('workerId', r.worker_id) END);
    IF NOT r.ignore_result THEN PERFORM worq.deliver(q, u.id, r.origin, 'p' || u.value); END IF;
  END LOOP;
END $$;

-- Cancels a task that has not ended (the caller holds the queue lock); a running one's worker is told.
CREATE OR REPLACE FUNCTION worq.cancel_one(q text, tid text, now bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  r worq.tasks;
  tok text;
BEGIN
  SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = tid FOR UPDATE;
  IF NOT FOUND OR r.state = 'done' THEN RETURN false; END IF;
  tok := CASE WHEN r.state = 'processing' THEN r.token END;
  PERFORM worq.finish(q, tid, worq.cancelled_outcome(r.name, q, tid), now, false, tok);
  IF tok IS NOT NULL THEN PERFORM worq.tell(q, jsonb_build_object('type', 'cancel', 'id', tid)); END IF;
  RETURN true;
END $$;

CREATE OR REPLACE FUNCTION worq.cancel(q text, tid text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM worq.lock(q);
  RETURN worq.cancel_one(q, tid, worq.now_ms());
END $$;

-- Cancels every waiting task: pending, then the line, delayed and held ones.
CREATE OR REPLACE FUNCTION worq.purge(q text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer := 0;
  tid text;
BEGIN
  PERFORM worq.lock(q);
  FOR tid IN SELECT id FROM worq.tasks WHERE queue = q
      AND state IN ('pending', 'enqueued', 'delayed', 'held')
      ORDER BY array_position(ARRAY['pending', 'enqueued', 'delayed', 'held'], state),
        priority, line_seq LOOP
    IF worq.cancel_one(q, tid, worq.now_ms()) THEN n := n + 1; END IF;
  END LOOP;
  RETURN n;
END $$;

CREATE OR REPLACE FUNCTION worq.backoff_delay(b jsonb, attempt integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  ms double precision := (b->>'delay')::double precision;
BEGIN
  IF b->>'type' = 'exponential' THEN ms := ms * 2 ^ (attempt - 1); END IF;
  IF (b->>'maxDelay')::double precision > 0 THEN ms := least(ms, (b->>'maxDelay')::double precision); END IF;
  RETURN round(ms * (1 - (b->>'jitter')::double precision * random()));
END $$;

-- Expires or retries tasks whose lease lapsed (the stall rule as in rules.ts), drops expired
-- outcomes, cache entries and workers in bounded batches. At most once per `interval` ms.
CREATE OR REPLACE FUNCTION worq.sweep(q text, "interval" bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  qr worq.queues;
  now bigint;
  last bigint;
  stalled boolean;
  handled integer := 0;
  t record;
  lapsed text := 'the worker stopped renewing its lease (it died, hung or lost its connection)';
BEGIN
  -- The guard is read without the lock first: the pools of a queue that swept recently wait for
  -- nobody (nor hold up the queue's exchanges).
  IF EXISTS (SELECT 1 FROM worq.queues WHERE name = q
      AND worq.now_ms() - last_sweep < "interval") THEN
    RETURN 0;
  END IF;
  qr := worq.lock(q);
  now := worq.now_ms();
  last := qr.swept_at;
  IF now - qr.last_sweep < "interval" THEN RETURN 0; END IF;
  stalled := last IS NOT NULL AND now - last > 2 * "interval" + 1000;
  UPDATE worq.queues SET last_sweep = now, swept_at = now WHERE name = q;
  DELETE FROM worq.tasks WHERE ctid = ANY (ARRAY(SELECT ctid FROM worq.tasks
    WHERE queue = q AND state = 'done' AND expires_at <= now LIMIT 1000));
  DELETE FROM worq.cache WHERE queue = q AND expires_at <= now;
  DELETE FROM worq.workers WHERE queue = q AND until <= now;
  FOR t IN SELECT id, name, lease_until, heartrate, attempt, attempts, backoff FROM worq.tasks
      WHERE queue = q AND state = 'processing' AND lease_until < now ORDER BY lease_until FOR UPDATE
  LOOP
    IF stalled AND t.lease_until > last THEN
      UPDATE worq.tasks SET lease_until = now + worq.lease_ms(t.heartrate) WHERE queue = q AND id = t.id;
      CONTINUE;
    END IF;
    handled := handled + 1;
    IF t.attempt < t.attempts THEN
      PERFORM worq.retry(q, t.id, now + worq.backoff_delay(t.backoff, t.attempt),
        jsonb_build_object('error', jsonb_build_object('name', 'TaskExpired', 'message', lapsed)), now);
    ELSE
      PERFORM worq.finish(q, t.id, worq.expired_outcome(t.name, q, t.id, lapsed, t.attempt), now,
        false, NULL);
    END IF;
  END LOOP;
  RETURN handled;
END $$;
