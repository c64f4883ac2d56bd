-- Schema version 22: an exchange sent again after its connection dropped (pool.ts: in the instant
-- between its commit and its reply) answers as its first try did, when that try committed. The
-- statement names its call (setting worq_call.id, a random id per exchange; worq_call.again is 'on'
-- for a try sent again, lib/backends/postgres/reserved.ts):
-- - reserve() puts the call's id in the tokens it makes (`<worker>:c<call>.<n>`), and a try sent
--   again answers the tasks its first try reserved (until version 21 they waited out their lease,
--   about 21 s with the default heartrate, and ran on another worker);
-- - an ignoreResult task's finish deletes its row, and a retry's mark (finish_tag) lasts until the
--   task's next attempt ends: the exchange that ended such tasks, or put tasks back for a retry,
--   leaves a memo of their ids under its call (table exchange_memos, a row per queue and worker,
--   written only by those exchanges), so a try sent again finds them done by its first try: quiet,
--   not stale (a lease:lost before). The sweep drops memos older than ten minutes.
-- A statement that does not name its call (a process of version 21) works as before.

CREATE TABLE worq.exchange_memos (
  queue text NOT NULL,
  worker text NOT NULL,
  call_id text NOT NULL,
  ids text[] NOT NULL,
  at bigint NOT NULL,
  PRIMARY KEY (queue, worker)
);

-- Remembers that the current call (worq_call.id) of worker `w` ended the ignoreResult tasks `ids`,
-- or put them back for a retry (added to what the same call remembered before; another call's memo
-- is replaced).
-- (plpgsql, not sql: a plpgsql function keeps its statement's plan for the session, where a sql
-- function called from plpgsql plans its body on every call, which cost a lone ignoreResult call
-- about 0.2 ms.)
CREATE FUNCTION worq.remember_ended(q text, w text, ids text[], now bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  this_call text := coalesce(current_setting('worq_call.id', true), '');
BEGIN
  IF this_call = '' THEN RETURN; END IF;
  INSERT INTO worq.exchange_memos AS m (queue, worker, call_id, ids, at)
  VALUES (q, w, this_call, remember_ended.ids, now)
  ON CONFLICT (queue, worker) DO UPDATE SET call_id = excluded.call_id,
    ids = CASE WHEN m.call_id = excluded.call_id THEN m.ids || excluded.ids ELSE excluded.ids END,
    at = excluded.at;
END $$;

-- emit() as plpgsql: its INSERT's plan is kept for the session, where as a sql function called
-- from plpgsql it planned the INSERT on every call (16 against 7 µs an event, 2 000 in a loop).
-- Every event and count written one by one goes through it (task_event(): limits, dependents,
-- retries, releases, cancels, the cache).
CREATE OR REPLACE FUNCTION worq.emit(q text, body jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO worq.inbox (queue, body) VALUES (q, body);
END $$;

CREATE OR REPLACE FUNCTION worq.reserve(qr worq.queues, worker text, max integer, now bigint)
RETURNS json LANGUAGE plpgsql
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  q text := qr.name;
  out json := '[]';
  acc json[] := '{}';
  r worq.tasks;
  blocked jsonb;
  -- Version 22: `<worker>:c<call>.<n>` when the statement names its call (worq_call.id), so that
  -- the same exchange sent again finds the tasks its first try reserved; else `<worker>:<n>`.
  prefix text := worker || ':' ||
    CASE WHEN coalesce(current_setting('worq_call.id', true), '') <> ''
    THEN 'c' || current_setting('worq_call.id', true) || '.' ELSE '' END;
BEGIN
  IF qr.paused OR max <= 0 THEN RETURN out; END IF;
  -- Due delayed tasks join the back of their line. (Each step is looked for first: a plain
  -- look-up of an empty index costs a tenth of a statement that would change nothing.)
  IF EXISTS (SELECT 1 FROM worq.tasks WHERE queue = q AND state = 'delayed' AND due_at <= now) THEN
    UPDATE worq.tasks t SET state = 'enqueued', ready_at = t.due_at, due_at = NULL,
      line_seq = nextval('worq.line_seq')
    FROM (SELECT ctid AS tid FROM worq.tasks WHERE queue = q AND state = 'delayed'
          AND due_at <= now ORDER BY due_at, line_seq FOR UPDATE) due
    WHERE t.ctid = due.tid;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM worq.tasks WHERE queue = q AND state = 'enqueued') THEN
    RETURN out;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM worq.limits WHERE queue = q) THEN
    WITH picked AS (
      SELECT ctid AS tid FROM worq.tasks WHERE queue = q AND state = 'enqueued'
      ORDER BY priority, line_seq LIMIT max FOR NO KEY UPDATE SKIP LOCKED
    ), took AS (
      UPDATE worq.tasks t SET state = 'processing', attempt = t.attempt + 1,
        token = prefix || nextval('worq.token_seq'),
        lease_until = now + worq.lease_ms(t.heartrate), started_at = now, worker_id = worker
      FROM picked WHERE t.ctid = picked.tid
      RETURNING t.*
    ), logged AS (
      -- One inbox row for the `started` events of the whole reservation.
      INSERT INTO worq.inbox (queue, body)
      SELECT q, json_build_object('es', json_agg(json_build_object('type', 'started',
          'id', took.id, 'name', took.name, 'time', now, 'attempt', took.attempt,
          'workerId', worker) ORDER BY took.priority, took.line_seq))
      FROM took HAVING count(*) > 0 AND qr.events
    )
    SELECT coalesce(json_agg(worq.reserved(took) ORDER BY took.priority, took.line_seq), '[]')
      INTO out FROM took;
    RETURN out;
  END IF;
  WHILE cardinality(acc) < max LOOP
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
      token = prefix || nextval('worq.token_seq'),
      lease_until = now + worq.lease_ms(heartrate), started_at = now, worker_id = worker,
      holds = CASE WHEN blocked ? 'holds'
        THEN ARRAY(SELECT jsonb_array_elements_text(blocked->'holds')) END
    WHERE queue = q AND id = r.id RETURNING * INTO r;
    PERFORM worq.task_event('started', r, now,
      jsonb_build_object('attempt', r.attempt, 'workerId', worker));
    acc := acc || worq.reserved(r);
  END LOOP;
  RETURN array_to_json(acc);
END $$;

CREATE OR REPLACE FUNCTION worq.end_plain(q text, done jsonb, now bigint) RETURNS text[]
LANGUAGE plpgsql SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  ids text[];
  tokens text[];
  plain text[];
  tids tid[];
  delivered bigint;
  -- One finish's (below): none of these names is a column or alias of the statements.
  lone_f record;
  lone_tid tid;
  lone_e record;
  lone_m text;
BEGIN
  -- One finish (a lone call's exchange; version 14): the same rules and writes as the set's
  -- statements below, in plain statements whose start-up costs little.
  IF jsonb_array_length(done) = 1 THEN
    SELECT * INTO lone_f FROM jsonb_to_record(done->0) AS x(id text, token text, outcome text,
      "retryAt" bigint, release boolean, "runMs" bigint, "waitMs" bigint);
    IF lone_f.outcome IS NULL OR lone_f."retryAt" IS NOT NULL
        OR coalesce(lone_f.release, false) THEN
      RETURN '{}';
    END IF;
    SELECT t.ctid INTO lone_tid FROM worq.tasks t
      WHERE t.queue = q AND t.state = 'processing' AND t.id = lone_f.id
        AND t.token = lone_f.token AND t.holds IS NULL AND t.cache_key IS NULL
      FOR UPDATE OF t;
    IF NOT FOUND THEN RETURN '{}'; END IF;
    -- New statements, so a dependent registered before the lock was taken is seen (the task then
    -- ends through exchange's loop, which hands its outcome over).
    UPDATE worq.tasks t SET state = 'done', outcome = lone_f.outcome, finish_tag = lone_f.token,
      expires_at = now + t.result_timeout, token = NULL, lease_until = NULL, finished_at = now,
      held_by = NULL, holds = NULL,
      payload = CASE WHEN left(lone_f.outcome, 1) = 'c' THEN '' ELSE t.payload END
    WHERE t.ctid = lone_tid AND NOT t.ignore_result
      AND NOT EXISTS (SELECT 1 FROM worq.deps d WHERE d.queue = q AND d.id = lone_f.id)
    RETURNING t.id, t.name, t.attempt, t.worker_id, t.started_at, t.origin INTO lone_e;
    IF NOT FOUND THEN
      DELETE FROM worq.tasks t
      WHERE t.ctid = lone_tid AND t.ignore_result
        AND NOT EXISTS (SELECT 1 FROM worq.deps d WHERE d.queue = q AND d.id = lone_f.id)
      RETURNING t.id, t.name, t.attempt, t.worker_id, t.started_at, NULL::text AS origin
      INTO lone_e;
      IF NOT FOUND THEN RETURN '{}'; END IF;
      PERFORM worq.remember_ended(q, lone_e.worker_id, ARRAY[lone_e.id], now);
    END IF;
    INSERT INTO worq.inbox (queue, body) VALUES (q, json_build_object(
      'es', json_build_array(json_strip_nulls(json_build_object('type',
        CASE left(lone_f.outcome, 1) WHEN 'c' THEN 'completed' WHEN 'f' THEN 'failed'
          WHEN 'x' THEN 'expired' ELSE 'cancelled' END,
        'id', lone_e.id, 'name', lone_e.name, 'time', now,
        'attempt', CASE WHEN lone_e.attempt > 0 THEN lone_e.attempt END,
        'workerId', lone_e.worker_id, 'ms', now - lone_e.started_at,
        'outcome', CASE WHEN left(lone_f.outcome, 1) <> 'c' THEN lone_f.outcome END))),
      'ms', json_build_array(json_strip_nulls(json_build_object('k', left(lone_f.outcome, 1),
        't', now, 'run', lone_f."runMs", 'w', lone_f."waitMs")))));
    IF lone_e.origin IS NOT NULL THEN
      lone_m := CASE WHEN octet_length(lone_f.outcome) < 7800
        THEN json_build_array(q, lone_e.id, lone_f.outcome)::text END;
      PERFORM pg_notify('@schema@.o.' || lone_e.origin, CASE WHEN octet_length(lone_m) < 7800
        THEN lone_m ELSE json_build_array(q, lone_e.id, left(lone_f.outcome, 1))::text END);
    END IF;
    RETURN ARRAY[lone_e.id];
  END IF;
  SELECT array_agg(x.id), array_agg(x.token) INTO ids, tokens
    FROM jsonb_to_recordset(done) AS x(id text, token text, outcome text, "retryAt" bigint,
      release boolean)
    WHERE x.outcome IS NOT NULL AND x."retryAt" IS NULL AND NOT coalesce(x.release, false);
  IF ids IS NULL THEN RETURN '{}'; END IF;
  SELECT coalesce(array_agg(locked.id), '{}'), coalesce(array_agg(locked.ctid), '{}')
    INTO plain, tids FROM (
      SELECT t.id, t.ctid, t.token FROM worq.tasks t
      WHERE t.queue = q AND t.state = 'processing' AND t.id = ANY (ids)
        AND t.holds IS NULL AND t.cache_key IS NULL
      FOR UPDATE OF t
    ) locked
    WHERE locked.token = tokens[array_position(ids, locked.id)];
  IF cardinality(plain) = 0 THEN RETURN plain; END IF;
  -- A new statement, so a dependent registered on one of these tasks before its lock was taken
  -- is seen: that task goes through exchange's loop, which hands its outcome over.
  SELECT coalesce(array_agg(u.id), '{}'), coalesce(array_agg(u.tid), '{}') INTO plain, tids
    FROM unnest(plain, tids) AS u(id, tid)
    WHERE NOT EXISTS (SELECT 1 FROM worq.deps d WHERE d.queue = q AND d.id = u.id);
  IF cardinality(plain) = 0 THEN RETURN plain; END IF;
  -- Each finish with the tuple id of its locked row: the update and the delete find their rows by
  -- it alone (a parameterized TID scan), with no condition an index could take instead.
  WITH f AS (
    SELECT x.*, u.tid FROM unnest(plain, tids) AS u(id, tid)
    JOIN ROWS FROM (jsonb_to_recordset(done) AS (id text, token text, outcome text,
      "runMs" bigint, "waitMs" bigint)) WITH ORDINALITY AS x ON x.id = u.id
  ), kept AS (
    UPDATE worq.tasks t SET state = 'done', outcome = f.outcome, finish_tag = f.token,
      expires_at = now + t.result_timeout, token = NULL, lease_until = NULL, finished_at = now,
      held_by = NULL, holds = NULL,
      payload = CASE WHEN left(f.outcome, 1) = 'c' THEN '' ELSE t.payload END
    FROM f WHERE t.ctid = f.tid AND NOT t.ignore_result
    RETURNING t.id, t.name, t.attempt, t.worker_id, t.started_at, t.origin, f.outcome,
      f.ordinality, f."runMs", f."waitMs"
  ), dropped AS (
    DELETE FROM worq.tasks t USING f
    WHERE t.ctid = f.tid AND t.ignore_result
    RETURNING t.id, t.name, t.attempt, t.worker_id, t.started_at, NULL::text AS origin,
      f.outcome, f.ordinality, f."runMs", f."waitMs"
  ), remembered AS (
    -- remember_ended() as a statement of the query (a data-modifying WITH always runs).
    INSERT INTO worq.exchange_memos AS m (queue, worker, call_id, ids, at)
    SELECT q, min(dropped.worker_id), current_setting('worq_call.id', true), array_agg(dropped.id),
      now
    FROM dropped WHERE coalesce(current_setting('worq_call.id', true), '') <> ''
    HAVING count(*) > 0
    ON CONFLICT (queue, worker) DO UPDATE SET call_id = excluded.call_id,
      ids = CASE WHEN m.call_id = excluded.call_id THEN m.ids || excluded.ids ELSE excluded.ids END,
      at = excluded.at
  ), ended AS (
    SELECT * FROM kept UNION ALL SELECT * FROM dropped
  ), logged AS (
    -- Built as json text (a key whose value is null is left out), parsed by the fold.
    INSERT INTO worq.inbox (queue, body)
    SELECT q, json_build_object(
      'es', json_agg(json_strip_nulls(json_build_object('type', CASE left(e.outcome, 1)
          WHEN 'c' THEN 'completed' WHEN 'f' THEN 'failed' WHEN 'x' THEN 'expired'
          ELSE 'cancelled' END,
          'id', e.id, 'name', e.name, 'time', now,
          'attempt', CASE WHEN e.attempt > 0 THEN e.attempt END, 'workerId', e.worker_id,
          'ms', now - e.started_at,
          'outcome', CASE WHEN left(e.outcome, 1) <> 'c' THEN e.outcome END))
        ORDER BY e.ordinality),
      'ms', json_agg(json_strip_nulls(json_build_object('k', left(e.outcome, 1), 't', now,
          'run', e."runMs", 'w', e."waitMs"))
        ORDER BY e.ordinality))
    FROM ended e HAVING count(*) > 0
  )
  -- Each outcome to the instance that enqueued its task, as deliver() sends it (inline when it
  -- fits a notification, else its address).
  SELECT ARRAY(SELECT e.id FROM ended e), count(pg_notify('@schema@.o.' || e.origin,
      CASE WHEN octet_length(n.m) < 7800 THEN n.m
        ELSE json_build_array(q, e.id, left(e.outcome, 1))::text END))
    INTO plain, delivered
    FROM ended e LEFT JOIN LATERAL (SELECT CASE WHEN octet_length(e.outcome) < 7800
      THEN json_build_array(q, e.id, e.outcome)::text END AS m) n ON true
    WHERE e.origin IS NOT NULL;
  RETURN plain;
END $$;

CREATE OR REPLACE FUNCTION worq.exchange(q text, worker text, done jsonb, max integer)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  qr worq.queues;
  now bigint;
  f record;
  r worq.tasks;
  found_ boolean;
  stale text[] := '{}';
  ended text[];
  timing jsonb;
  reserved json;
  due bigint;
  folded bigint;
  -- Version 22: the call's id, and whether this is the call sent again after its connection
  -- dropped (its first try may have committed); the ignoreResult tasks it ended (their rows go)
  -- and those it put back for a retry (remember_ended()).
  this_call text := coalesce(current_setting('worq_call.id', true), '');
  again boolean := coalesce(current_setting('worq_call.again', true), '') = 'on';
  ended_here text[] := '{}';
BEGIN
  -- hold()'s lock, taken here (version 14: a call fewer for every exchange).
  SELECT * INTO qr FROM worq.queues qs WHERE qs.name = q FOR UPDATE;
  IF NOT FOUND THEN qr := worq.hold(q); END IF;
  now := worq.now_ms();
  ended := CASE WHEN jsonb_array_length(done) = 0 THEN '{}'
    ELSE worq.end_plain(q, done, now) END;
  -- What end_plain did not end, one by one (none in the common case: then no loop at all).
  IF cardinality(ended) < jsonb_array_length(done) THEN
    FOR f IN SELECT * FROM jsonb_to_recordset(done)
      AS x(id text, token text, outcome text, "retryAt" bigint, release boolean, error jsonb,
        "runMs" bigint, "waitMs" bigint)
    LOOP
      CONTINUE WHEN f.id = ANY (ended);
      -- Wait and run times as the worker measured them (a release never ran): counted with the
      -- retry or the outcome, or, for a refused finish, only where a cancel ended the run.
      timing := CASE WHEN NOT coalesce(f.release, false)
          AND (f."runMs" IS NOT NULL OR f."waitMs" IS NOT NULL)
        THEN jsonb_build_object('run', f."runMs", 'w', f."waitMs") ELSE '{}' END;
      SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = f.id FOR UPDATE;
      found_ := FOUND;
      IF NOT found_ OR r.state <> 'processing' OR r.token IS DISTINCT FROM f.token THEN
        -- Refused. Its run was counted by the call that ended it (the sweep; a cancel of an
        -- ignoreResult task; this very finish, its exchange sent again after the commit: pool.ts),
        -- save a run a cancel ended, counted here once: finish_tag then gets a `+` (no token ends
        -- in one), which the same exchange sent again finds.
        IF found_ AND r.finish_tag = f.token AND r.state = 'done'
            AND left(r.outcome, 1) = 'k' AND timing <> '{}' THEN
          PERFORM worq.emit(q, jsonb_build_object('t', now) || timing);
          UPDATE worq.tasks SET finish_tag = f.token || '+' WHERE queue = q AND id = f.id;
        END IF;
        -- Quiet: a release (the task never started), the end of a run cancelled as it ran, and a
        -- finish or retry this very finish applied before (its exchange sent again).
        -- Sent again: an ignoreResult task its first try ended left no row, and a task it put back
        -- for a retry may have run and ended since; both left a memo.
        IF again AND this_call <> '' AND EXISTS (SELECT 1 FROM worq.exchange_memos m
            WHERE m.queue = q AND m.worker = exchange.worker AND m.call_id = this_call
              AND f.id = ANY (m.ids)) THEN
          CONTINUE;
        END IF;
        IF NOT coalesce(f.release, false)
            AND NOT (found_ AND coalesce(r.finish_tag IN (f.token, f.token || '+'), false)) THEN
          stale := stale || f.id;
        END IF;
        CONTINUE;
      END IF;
      IF coalesce(f.release, false) THEN
        PERFORM worq.task_event('enqueued', r, now, jsonb_strip_nulls(jsonb_build_object(
          'released', true, 'attempt', r.attempt, 'workerId', r.worker_id)));
        PERFORM worq.free_slots(q, f.id, r.holds);
        UPDATE worq.tasks SET state = 'enqueued', token = NULL, lease_until = NULL, holds = NULL,
          attempt = attempt - 1, line_seq = -nextval('worq.line_seq') WHERE queue = q AND id = f.id;
        PERFORM worq.wake(q);
      ELSIF f."retryAt" IS NOT NULL THEN
        PERFORM worq.retry(q, f.id, f."retryAt", jsonb_build_object('error', f.error), now, timing,
          f.token);
        ended_here := ended_here || f.id;
      ELSE
        PERFORM worq.finish(q, f.id, f.outcome, now, false, f.token, timing);
        IF r.ignore_result THEN ended_here := ended_here || f.id; END IF;
      END IF;
    END LOOP;
    IF cardinality(ended_here) > 0 THEN
      PERFORM worq.remember_ended(q, worker, ended_here, now);
    END IF;
  END IF;
  -- Sent again: the tasks its first try reserved, if that try committed (their tokens name the
  -- call), are this reply's; none, and it reserves as any exchange.
  IF again AND this_call <> '' THEN
    SELECT json_agg(worq.reserved(t) ORDER BY t.priority, t.line_seq) INTO reserved
    FROM worq.tasks t
    WHERE t.queue = q AND t.state = 'processing' AND t.worker_id = exchange.worker
      AND starts_with(t.token, exchange.worker || ':c' || this_call || '.');
  END IF;
  IF reserved IS NULL THEN reserved := worq.reserve(qr, worker, max, now); END IF;
  IF json_array_length(reserved) < max THEN
    SELECT min(due_at) INTO due FROM worq.tasks WHERE queue = q AND state = 'delayed';
  END IF;
  -- FOLD_MS = 1 000 (100 until version 9): a running queue's inbox holds about a second of
  -- records. The row is read, not locked: a fold under way holds it.
  SELECT folded_at INTO folded FROM worq.folds WHERE queue = q;
  -- json, not jsonb: built as text, the reply costs a third of what jsonb's did (5 000 reserved
  -- tasks: 22 against 60 ms). nextDueIn is null when nothing is delayed (or the batch is full).
  RETURN json_build_object('stale', stale, 'reserved', reserved,
    'nextDueIn', CASE WHEN due IS NOT NULL THEN greatest(0, due - now) END,
    'fold', folded IS NULL OR now - folded >= 1000);
END $$;

CREATE OR REPLACE FUNCTION worq.sweep(q text, "interval" bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  qr worq.queues;
  now bigint;
  last bigint;
  stalled boolean;
  handled integer := 0;
  t worq.tasks;
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
  DELETE FROM worq.exchange_memos WHERE queue = q AND at <= now - 600000;
  FOR t IN SELECT * FROM worq.tasks
      WHERE queue = q AND state = 'processing' AND lease_until < now ORDER BY lease_until FOR UPDATE
  LOOP
    IF stalled AND t.lease_until > last THEN
      UPDATE worq.tasks SET lease_until = now + worq.lease_ms(t.heartrate) WHERE queue = q AND id = t.id;
      CONTINUE;
    END IF;
    handled := handled + 1;
    -- This call ends the run: it counts its wait and its time (its worker's late finish, if it
    -- comes, is refused and counts nothing, exchange).
    IF t.attempt < t.attempts THEN
      PERFORM worq.retry(q, t.id, now + worq.backoff_delay(t.backoff, t.attempt),
        jsonb_build_object('error', jsonb_build_object('name', 'TaskExpired', 'message', lapsed)), now,
        worq.run_times(t, now));
    ELSE
      PERFORM worq.finish(q, t.id, worq.expired_outcome(t.name, q, t.id, lapsed, t.attempt), now,
        false, NULL, worq.run_times(t, now));
    END IF;
  END LOOP;
  RETURN handled;
END $$;
