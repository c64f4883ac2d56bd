-- Folding the inbox into events (numbered per queue, the last events_max kept) and per-minute
-- metrics (a day of minutes, and the totals under minute 0). The caller holds the queue's lock.
-- The histogram bucket of a duration (timeBucket in rules.ts): 0 up to 1 ms, then log2, 21 beyond.
CREATE OR REPLACE FUNCTION worq.bucket(ms bigint) RETURNS integer LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN ms <= 1 THEN 0 ELSE least(ceil(log(2, ms::numeric))::integer, 21) END $$;

-- 22 counts from a list of buckets.
CREATE OR REPLACE FUNCTION worq.histogram(buckets integer[]) RETURNS bigint[] LANGUAGE sql
IMMUTABLE AS
$$ SELECT ARRAY(SELECT (SELECT count(*) FROM unnest(buckets) b WHERE b = i)
     FROM generate_series(0, 21) i ORDER BY i) $$;

-- Adds one minute's counts (a row of the flush's aggregate) to that minute and to the totals.
CREATE OR REPLACE FUNCTION worq.count(q text, a jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_minute bigint := (a->>'minute')::bigint;
  v_run bigint[] := worq.histogram(ARRAY(SELECT jsonb_array_elements_text(a->'runs')::integer));
  v_wait bigint[] := worq.histogram(ARRAY(SELECT jsonb_array_elements_text(a->'waits')::integer));
BEGIN
  INSERT INTO worq.metrics AS m (queue, minute, completed, failed, retried, expired, cancelled,
    wait, run, wait_sum, run_sum)
  SELECT q, x, (a->>'c')::bigint, (a->>'f')::bigint, (a->>'r')::bigint, (a->>'x')::bigint,
    (a->>'k')::bigint, v_wait, v_run, (a->>'ws')::bigint, (a->>'rs')::bigint
  FROM unnest(ARRAY[v_minute, 0]) x
  ON CONFLICT (queue, minute) DO UPDATE SET completed = m.completed + excluded.completed,
    failed = m.failed + excluded.failed, retried = m.retried + excluded.retried,
    expired = m.expired + excluded.expired, cancelled = m.cancelled + excluded.cancelled,
    wait = ARRAY(SELECT u.x + u.y FROM unnest(m.wait, excluded.wait) AS u(x, y)),
    run = ARRAY(SELECT u.x + u.y FROM unnest(m.run, excluded.run) AS u(x, y)),
    wait_sum = m.wait_sum + excluded.wait_sum, run_sum = m.run_sum + excluded.run_sum;
  DELETE FROM worq.metrics WHERE queue = q AND minute > 0 AND minute <= v_minute - 1440 * 60000;
END $$;

-- Moves the queue's inbox into events (numbered on from event_seq) and metrics, set by set.
CREATE OR REPLACE FUNCTION worq.flush(qr worq.queues) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  q text := qr.name;
  added bigint;
  minutes jsonb;
  a jsonb;
BEGIN
  WITH gone AS (DELETE FROM worq.inbox WHERE queue = q RETURNING seq, body),
  -- An inbox row holds one event (`e`) or several in order (`es`), and a count at time `t` (its
  -- kind `k`, a run and wait time), or one of them.
  ev AS (
    INSERT INTO worq.events (queue, n, body)
    SELECT q, qr.event_seq + row_number() OVER (ORDER BY each.seq, each.i), each.e FROM (
      SELECT seq, 0::bigint AS i, body->'e' AS e FROM gone WHERE body ? 'e'
      UNION ALL
      SELECT seq, x.i, x.e FROM gone, jsonb_array_elements(gone.body->'es') WITH ORDINALITY AS x(e, i)
      WHERE gone.body ? 'es'
    ) each
    WHERE qr.events
    RETURNING 1
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
  SELECT (SELECT count(*) FROM ev), (SELECT jsonb_agg(agg.a) FROM agg) INTO added, minutes;
  FOR a IN SELECT * FROM jsonb_array_elements(coalesce(minutes, '[]')) LOOP
    PERFORM worq.count(q, a);
  END LOOP;
  IF added > 0 THEN
    UPDATE worq.queues SET event_seq = event_seq + added WHERE name = q;
    DELETE FROM worq.events WHERE queue = q AND n <= qr.event_seq + added - qr.events_max;
  END IF;
END $$;

-- Folds the inbox of a queue under its lock (readers of events and metrics call it first).
CREATE OR REPLACE FUNCTION worq.settle(q text) RETURNS worq.queues LANGUAGE sql AS
$$ SELECT worq.lock(q) $$;

-- Fires a schedule for its due time, at most once (Backend.fireSchedule).
CREATE OR REPLACE FUNCTION worq.fire_schedule(q text, sid text, due bigint, next bigint,
  task jsonb, origin text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  b jsonb;
  qr worq.queues := worq.lock(q);
BEGIN
  SELECT body INTO b FROM worq.schedules WHERE queue = q AND id = sid FOR UPDATE;
  IF NOT FOUND OR (b->>'next')::bigint IS DISTINCT FROM due THEN RETURN false; END IF;
  b := jsonb_set(b, '{next}', coalesce(to_jsonb(next), 'null'::jsonb));
  IF task IS NOT NULL THEN
    b := b || jsonb_build_object('last', due, 'runs', (b->>'runs')::integer + 1);
  END IF;
  UPDATE worq.schedules SET body = b WHERE queue = q AND id = sid;
  IF task IS NOT NULL THEN
    PERFORM worq.enqueue_one(q, task, origin, qr.listing, worq.now_ms(), NULL);
  END IF;
  RETURN true;
END $$;

-- Pauses or resumes a queue; true when the state changed (Backend.pause).
CREATE OR REPLACE FUNCTION worq.pause(q text, p boolean) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  qr worq.queues := worq.lock(q);
  type text := CASE WHEN p THEN 'paused' ELSE 'resumed' END;
BEGIN
  IF qr.paused = p THEN RETURN false; END IF;
  UPDATE worq.queues SET paused = p WHERE name = q;
  PERFORM worq.emit(q, jsonb_build_object('e', jsonb_build_object('type', type, 'id', '',
    'name', '', 'time', worq.now_ms())));
  PERFORM worq.tell(q, jsonb_build_object('type', type));
  IF NOT p THEN PERFORM worq.wake(q); END IF;
  RETURN true;
END $$;
