-- Schema version 5: a fold writes the short lists of events of consecutive inbox rows together.
-- Version 4 wrote one events row per inbox row (per step that recorded events): sequential calls,
-- each step recording one event, wrote three events rows per task; a fold of a tenth of a second's
-- calls now writes one. Long lists (10 events or more: batches) still go as they are, which costs
-- the fold nothing more (expanding and gathering every event made a fold at c=50 1.7–2.2× slower).
-- Readers and trimming are unchanged (a row holds events n … n + count − 1, at most 1 000).
--
-- It also makes end_plain's update and delete find their rows by tuple id alone. With `id = ANY
-- (…)` and `t.id = f.id` beside `ctid = ANY (…)`, a generic plan could take the primary key
-- (queue, id) with only `id` as its condition, which reads the whole index: in about one run out of
-- two, a bulk run of 5 000 tasks ended its batches in about 15 ms each instead of 5 (2 200 instead
-- of 5 300 tasks/s). Adding `queue = q` made it scan the queue's rows instead (3 300 tasks/s, every
-- run). Joined to the finishes by `ctid = f.tid` only, each row is one TID lookup.

-- Moves the queue's inbox into events (numbered on from event_seq) and metrics. (A generic plan:
-- custom plans made its big statement plan again on every fold, about 0.15 ms.)
CREATE OR REPLACE FUNCTION worq.flush(qr worq.queues) RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  q text := qr.name;
  added bigint;
  minutes jsonb;
  a jsonb;
  bound bigint;
BEGIN
  -- `body || '{}'` is the body itself, read once: a big body (a batch's events) is stored out of
  -- line (TOAST), and each use of a column reference would fetch and decompress it again (seven
  -- uses below: 12 inbox rows of 3 000 events took 15–20 ms to fold, most of it in those reads).
  WITH gone AS (DELETE FROM worq.inbox WHERE queue = q RETURNING seq, body || '{}' AS body),
  -- An inbox row holds one event (`e`) or several in order (`es`), and a count at time `t` (its
  -- kind `k`, a run and wait time), or one of them. A list of 10 events or more goes as it is, one
  -- events row (cut into rows of EVENT_SET, 1 000, when longer: a bulk enqueue); a run of shorter
  -- lists between two such rows (sequential calls: an event or two each) goes into rows of up to
  -- 1 000 together. Numbered on in inbox order.
  sized AS (
    SELECT seq, es, jsonb_array_length(es) AS c FROM (
      SELECT seq, CASE WHEN body ? 'es' THEN body->'es' ELSE jsonb_build_array(body->'e') END AS es
      FROM gone WHERE qr.events AND (body ? 'es' OR body ? 'e')
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
    SELECT q, qr.event_seq + sum(c) OVER (ORDER BY seq, part) - c + 1, c, es FROM pieces
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
    UPDATE worq.queues SET event_seq = event_seq + added WHERE name = q;
    -- Rows whose last event is older than the last events_max (`n <= bound` bounds the index scan).
    bound := qr.event_seq + added - qr.events_max;
    DELETE FROM worq.events WHERE queue = q AND n <= bound AND n + count - 1 <= bound;
  END IF;
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
