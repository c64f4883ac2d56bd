-- Schema version 3: ending a batch of plain finishes, and reserving, with plans that do not
-- depend on the table's statistics. Before, end_plain joined the finishes to `tasks` by
-- (queue, id): on a table not analyzed yet (a new database, or one that grew since autovacuum last
-- looked) the planner took `queue = q` for selective, scanned every row of the queue to find the
-- 50 of a batch, and ran jsonb_to_recordset once per processing row; and reserve's generic plan
-- read every row of the queue to update the one task it had picked. Now the finishes are read
-- into arrays once, their rows found among the queue's processing rows (a partial index bounded
-- by the running tasks) and locked, then updated or deleted by their tuple ids (`ctid`), which a
-- row keeps while this transaction holds its lock; reserve updates the rows it picked and locked
-- by their tuple ids too. It also caps a retry's backoff (backoff_delay) as rules.ts does.

-- Ends the plain finishes of `done` (completed, failed: no retry, no release, no dependents, no
-- limit slots, no cache key) in a few set-based statements; returns the ids it ended (the others
-- go through exchange's loop).
CREATE OR REPLACE FUNCTION worq.end_plain(q text, done jsonb, now bigint) RETURNS text[]
LANGUAGE plpgsql SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  ids text[];
  tokens text[];
  plain text[];
  tids tid[];
  delivered bigint;
BEGIN
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
    FROM f WHERE t.ctid = ANY (tids) AND t.id = ANY (plain) AND t.id = f.id
      AND NOT t.ignore_result
    RETURNING t.id, t.name, t.attempt, t.worker_id, t.started_at, t.origin, f.outcome,
      f.ordinality, f."runMs", f."waitMs"
  ), dropped AS (
    DELETE FROM worq.tasks t USING f
    WHERE t.ctid = ANY (tids) AND t.id = ANY (plain) AND t.id = f.id AND t.ignore_result
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

-- Reserves up to `max` ready tasks for `worker` (none while paused). The rows a step picks (and
-- locks) are updated by their tuple ids: joined by (queue, id), a generic plan on a table not
-- analyzed yet read every row of the queue for each reservation.
CREATE OR REPLACE FUNCTION worq.reserve(qr worq.queues, worker text, max integer, now bigint)
RETURNS jsonb LANGUAGE plpgsql SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
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
        token = worker || ':' || nextval('worq.token_seq'),
        lease_until = now + worq.lease_ms(t.heartrate), started_at = now, worker_id = worker
      FROM picked WHERE t.ctid = picked.tid
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

-- backoffDelay() of rules.ts, capped at MAX_DURATION_MS (100 years): an exponential backoff of
-- many attempts no longer overflows a bigint (which failed the sweep or the exchange that
-- retried the task).
CREATE OR REPLACE FUNCTION worq.backoff_delay(b jsonb, attempt integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  ms double precision := (b->>'delay')::double precision;
BEGIN
  IF b->>'type' = 'exponential' THEN ms := ms * 2 ^ least(attempt - 1, 1000); END IF;
  IF (b->>'maxDelay')::double precision > 0 THEN ms := least(ms, (b->>'maxDelay')::double precision); END IF;
  ms := least(ms, 3153600000000);
  RETURN round(ms * (1 - (b->>'jitter')::double precision * random()));
END $$;
