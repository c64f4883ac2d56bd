-- Schema version 9: the inbox holds json text. The operations on every task's path built their
-- inbox records as jsonb under the queue's lock: jsonb builds each object, sorts its keys, and
-- rebuilds it for every `||`. Ending a batch's plain finishes spent about 26 µs a task on its
-- `completed` events and counts, against 6 µs as json (5 000 tasks: 129 against 29 ms). Now
-- end_plain, reserve and the batch enqueue (lib/backends/postgres/enqueue.ts) write json, the
-- other writers' jsonb is cast on insert, and the fold parses each body once (about 8 µs a task),
-- off the lock every exchange takes. A process of an earlier version still running writes jsonb,
-- which the column casts as well.
-- It also folds every second instead of every 100 ms (FOLD_MS in fold and exchange): a fold costs
-- a fixed part (its statements, a metrics row per minute, the trim of old events) that a longer
-- interval spreads over more records. And the operations that take the queue's lock fold before
-- they take it (lock), so that a fold of a second's records never holds up the exchanges.

ALTER TABLE worq.inbox ALTER COLUMN body TYPE json USING body::json;
-- A new type resets the column's compression to the default (pglz): lz4 again where the server
-- has it, as version 4 set it.
DO $$
BEGIN
  EXECUTE 'ALTER TABLE worq.inbox ALTER COLUMN body SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR syntax_error THEN
  NULL;
END $$;

-- Takes the queue's row lock, after folding its inbox under the fold's lock alone (the sweep, and
-- the operations that change the queue's settings or lines: pause, limits, a schedule firing,
-- cancel, purge, configure). Until version 9 it folded under the queue's lock, and every exchange
-- waited for the fold. Records written between the fold and the lock wait for the next fold. The
-- folds row stays locked until the transaction ends, so no other fold runs before the operation
-- commits (configure's settings apply to every record folded after it).
CREATE OR REPLACE FUNCTION worq.lock(q text) RETURNS worq.queues LANGUAGE plpgsql AS $$
BEGIN
  PERFORM worq.fold(q, false);
  RETURN worq.hold(q);
END $$;

-- Folds the queue's inbox under its folds row (made on first use), not the queue's lock. `due`
-- (a worker after an exchange that asked for it): only when no fold is under way (SKIP LOCKED)
-- and the last is FOLD_MS (1 000 since version 9) old; true when it folded. Otherwise (lock, for
-- the sweep and the operations that change settings; readers): waits for a fold under way, then
-- folds.
CREATE OR REPLACE FUNCTION worq.fold(q text, due boolean) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  fr worq.folds;
  qr worq.queues;
  now bigint := worq.now_ms();
BEGIN
  -- The settings, read without the queue's lock (a fold under way when they change follows the
  -- settings it read). The row is made on first use, as the queue's lock makes it. Since version 9
  -- the lock order is the folds row, then the queue's (lock); nothing takes them the other way
  -- round (an exchange holds the queue's row and only reads the folds row).
  SELECT * INTO qr FROM worq.queues WHERE name = q;
  IF NOT FOUND THEN
    INSERT INTO worq.queues (name) VALUES (q) ON CONFLICT DO NOTHING;
    SELECT * INTO qr FROM worq.queues WHERE name = q;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM worq.folds WHERE queue = q) THEN
    INSERT INTO worq.folds (queue) VALUES (q) ON CONFLICT DO NOTHING;
  END IF;
  IF due THEN
    SELECT * INTO fr FROM worq.folds WHERE queue = q FOR UPDATE SKIP LOCKED;
    -- Another fold holds the row, or one ran less than FOLD_MS ago.
    IF NOT FOUND OR now - fr.folded_at < 1000 THEN RETURN false; END IF;
  ELSE
    SELECT * INTO fr FROM worq.folds WHERE queue = q FOR UPDATE;
  END IF;
  UPDATE worq.folds SET event_seq = worq.flush(qr, fr), folded_at = now WHERE queue = q;
  RETURN true;
END $$;

-- Moves the queue's inbox into events (numbered on from fr.event_seq) and metrics; returns the
-- number of the last event. The caller holds the queue's folds row (fold).
CREATE OR REPLACE FUNCTION worq.flush(qr worq.queues, fr worq.folds) RETURNS bigint LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  q text := qr.name;
  added bigint;
  minutes jsonb;
  a jsonb;
  bound bigint;
BEGIN
  -- Each body is read once and parsed here, off the path of the operations that wrote it (a big
  -- body, stored out of line, would be fetched again by every use of the column).
  WITH gone AS (DELETE FROM worq.inbox WHERE queue = q RETURNING seq, body::jsonb AS body),
  -- An inbox row holds one event (`e`) or several in order (`es`; `en`, a plain batch's
  -- `enqueued` events as lists, expanded here), and a count at time `t` (its kind `k`, a run and
  -- wait time), or one of them. A list of 10 events or more goes as it is, one events row (cut
  -- into rows of EVENT_SET, 1 000, when longer: a bulk enqueue); a run of shorter lists between
  -- two such rows (sequential calls: an event or two each) goes into rows of up to 1 000
  -- together. Numbered on in inbox order.
  -- (OFFSET 0 keeps `sets` a subquery of its own: pulled up into its readers, each list was built
  -- once per use, and a batch's `enqueued` events expanded three times.)
  sized AS (
    SELECT seq, es, jsonb_array_length(es) AS c FROM (
      SELECT seq, CASE WHEN body ? 'es' THEN body->'es'
          WHEN body ? 'en' THEN worq.enqueued_events(body->'en')
          ELSE jsonb_build_array(body->'e') END AS es
      FROM gone WHERE qr.events AND (body ? 'es' OR body ? 'e' OR body ? 'en')
      OFFSET 0
    ) sets
  ),
  -- `run`: how many long lists came before: the short lists of one run share it.
  runs AS (SELECT seq, es, c, sum((c >= 10)::int) OVER (ORDER BY seq) AS run FROM sized),
  short AS (
    SELECT r.run, r.seq, x.e, row_number() OVER (PARTITION BY r.run ORDER BY r.seq, x.i) AS k
    FROM runs r, jsonb_array_elements(r.es) WITH ORDINALITY AS x(e, i) WHERE r.c < 10
  ),
  pieces AS (
    SELECT seq, 0::bigint AS part, es, c FROM runs WHERE c BETWEEN 10 AND 1000
    UNION ALL
    SELECT s.seq, (x.i - 1) / 1000, jsonb_agg(x.e ORDER BY x.i), count(*)::integer
    FROM runs s, jsonb_array_elements(s.es) WITH ORDINALITY AS x(e, i)
    WHERE s.c > 1000 GROUP BY s.seq, (x.i - 1) / 1000
    UNION ALL
    SELECT min(seq), (k - 1) / 1000, jsonb_agg(e ORDER BY k), count(*)::integer
    FROM short GROUP BY run, (k - 1) / 1000
  ),
  ev AS (
    INSERT INTO worq.events (queue, n, count, body)
    SELECT q, fr.event_seq + sum(c) OVER (ORDER BY seq, part) - c + 1, c, es FROM pieces
    RETURNING count
  ),
  -- Counts: a row's own (`t`), or a list of them (`ms`).
  cnt AS (
    SELECT body AS c FROM gone WHERE body ? 't'
    UNION ALL
    SELECT x.c FROM gone, jsonb_array_elements(gone.body->'ms') AS x(c) WHERE gone.body ? 'ms'
  ),
  m AS (
    SELECT (c->>'t')::bigint - (c->>'t')::bigint % 60000 AS minute, c->>'k' AS k,
      (c->>'run')::bigint AS run, (c->>'w')::bigint AS w
    FROM cnt WHERE qr.metrics
  ),
  agg AS (
    SELECT jsonb_build_object('minute', minute, 'c', count(*) FILTER (WHERE k = 'c'),
      'f', count(*) FILTER (WHERE k = 'f'), 'r', count(*) FILTER (WHERE k = 'r'),
      'x', count(*) FILTER (WHERE k = 'x'), 'k', count(*) FILTER (WHERE k = 'k'),
      'rs', coalesce(sum(run), 0), 'ws', coalesce(sum(w), 0),
      'runs', coalesce(jsonb_agg(worq.bucket(run)) FILTER (WHERE run IS NOT NULL), '[]'),
      'waits', coalesce(jsonb_agg(worq.bucket(w)) FILTER (WHERE w IS NOT NULL), '[]')) AS a
    FROM m GROUP BY minute
  )
  SELECT (SELECT coalesce(sum(count), 0) FROM ev), (SELECT jsonb_agg(agg.a) FROM agg)
    INTO added, minutes;
  FOR a IN SELECT * FROM jsonb_array_elements(coalesce(minutes, '[]')) LOOP
    PERFORM worq.count(q, a);
  END LOOP;
  IF added > 0 THEN
    -- Rows whose last event is older than the last events_max (`n <= bound` bounds the index scan).
    bound := fr.event_seq + added - qr.events_max;
    DELETE FROM worq.events WHERE queue = q AND n <= bound AND n + count - 1 <= bound;
  END IF;
  RETURN fr.event_seq + added;
END $$;

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

-- Reserves up to `max` ready tasks for `worker` (none while paused), as a json array (version 6:
-- jsonb before; the limits path gathers them in an array of json).
CREATE OR REPLACE FUNCTION worq.reserve(qr worq.queues, worker text, max integer, now bigint)
RETURNS json LANGUAGE plpgsql
SET enable_seqscan = off SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  q text := qr.name;
  out json := '[]';
  acc json[] := '{}';
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
      token = worker || ':' || nextval('worq.token_seq'),
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

-- Finishes `done` (a JSON array of Finish), then reserves up to `max`: {stale, reserved, nextDueIn,
-- fold}; `fold` asks the caller to run fold(q, true) on its own, after this exchange.
CREATE OR REPLACE FUNCTION worq.exchange(q text, worker text, done jsonb, max integer)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  qr worq.queues := worq.hold(q);
  now bigint := worq.now_ms();
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
