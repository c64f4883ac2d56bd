-- Schema version 14, second part (after 018_lone_handover.sql, in the same transaction): end_plain
-- takes one task with a few small statements, and exchange takes the queue's lock itself and skips
-- its loop when end_plain ended everything.
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
  END IF;
  reserved := worq.reserve(qr, worker, max, now);
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
