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
