-- Schema version 4: events stored a set per row. Until version 3 a fold wrote one `events` row per
-- event, three rows per task (enqueued, started, its end): half the rows worq wrote per task. A
-- row now holds the events one step recorded (an inbox row: a batch of enqueues, a reservation's
-- starts, an exchange's ends), in order, as the jsonb array the step wrote, moved as it is (a list
-- of more than 1 000 is cut into rows of 1 000): `n` is the number of its first event and `count`
-- how many it holds, so it holds events n … n + count − 1. Trimming drops whole rows, so a queue
-- keeps at least its last events_max events, as the Redis stream does. Readers expand the rows
-- (queue-store.ts readEvents).

ALTER TABLE worq.events ADD COLUMN count integer NOT NULL DEFAULT 1;
-- Rows written before hold one event each: they become sets of one.
UPDATE worq.events SET body = jsonb_build_array(body);

-- The inbox and event sets hold lists of events big enough to be compressed (a batch of 1 000
-- enqueues is about 150 kB of JSON): lz4 compresses them several times faster than pglz, the
-- default. A server built without lz4 keeps pglz, and so does one older than PostgreSQL 14, which
-- has no SET COMPRESSION (run as dynamic SQL, so that its syntax error can be caught).
DO $$
BEGIN
  EXECUTE 'ALTER TABLE worq.inbox ALTER COLUMN body SET COMPRESSION lz4';
  EXECUTE 'ALTER TABLE worq.events ALTER COLUMN body SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR syntax_error THEN
  NULL;
END $$;

-- The histogram bucket of a duration (timeBucket in rules.ts): the first b with ms <= 2^b, 0 up to
-- 1 ms, 21 beyond 2^20 ms; width_bucket counts the powers of two below ms by binary search.
-- Version 1's ceil(log(2, ms::numeric)) took about 13 µs a duration, and a fold takes two per
-- task (its run and wait times): a fifth of a drain's fold time. This takes under 1 µs (the same
-- bucket for every ms from -5 to 3 000 000).
CREATE OR REPLACE FUNCTION worq.bucket(ms bigint) RETURNS integer LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN ms <= 1 THEN 0 ELSE width_bucket(ms - 1, '{1,2,4,8,16,32,64,128,256,512,1024,
  2048,4096,8192,16384,32768,65536,131072,262144,524288,1048576}'::bigint[]) END $$;

-- 22 counts from a list of buckets, in one pass (version 1 counted the list once per bucket).
CREATE OR REPLACE FUNCTION worq.histogram(buckets integer[]) RETURNS bigint[] LANGUAGE sql
IMMUTABLE AS
$$ SELECT array_agg(coalesce(c.n, 0) ORDER BY i) FROM generate_series(0, 21) i
   LEFT JOIN (SELECT b, count(*) AS n FROM unnest(buckets) b GROUP BY b) c ON c.b = i $$;

-- Moves the queue's inbox into events (numbered on from event_seq) and metrics, set by set. (A
-- generic plan: custom plans made its big statement plan again on every fold, about 0.15 ms.)
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
  -- kind `k`, a run and wait time), or one of them. Its events go as they are, one events row per
  -- inbox row that has any (`e` as a list of one), numbered on in inbox order.
  sized AS (
    SELECT seq, es, jsonb_array_length(es) AS c FROM (
      SELECT seq, CASE WHEN body ? 'es' THEN body->'es' ELSE jsonb_build_array(body->'e') END AS es
      FROM gone WHERE qr.events AND (body ? 'es' OR body ? 'e')
    ) sets
  ),
  -- A list longer than EVENT_SET (1 000: a bulk enqueue of many tasks in one tick) is cut into
  -- rows of that many, so that a reader's page never expands more than about two rows' worth.
  pieces AS (
    SELECT seq, 0::bigint AS part, es, c FROM sized WHERE c BETWEEN 1 AND 1000
    UNION ALL
    SELECT s.seq, (x.i - 1) / 1000, jsonb_agg(x.e ORDER BY x.i), count(*)::integer
    FROM sized s, jsonb_array_elements(s.es) WITH ORDINALITY AS x(e, i)
    WHERE s.c > 1000 GROUP BY s.seq, (x.i - 1) / 1000
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

-- Changes a queue's settings (`p`: the keys of QueueSettings to change). Under the queue's lock,
-- after folding its inbox: events and counts recorded while `events` or `metrics` was on are kept
-- when it goes off (a fold drops what the queue's settings say not to keep), and a lower
-- `eventsMax` applies from the next fold.
CREATE OR REPLACE FUNCTION worq.configure(q text, p jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM worq.lock(q);
  UPDATE worq.queues SET events = coalesce((p->>'events')::boolean, events),
    events_max = coalesce((p->>'eventsMax')::integer, events_max),
    metrics = coalesce((p->>'metrics')::boolean, metrics),
    listing = coalesce((p->>'listing')::boolean, listing),
    cache_size = coalesce((p->>'cacheSize')::integer, cache_size),
    cache_ttl = coalesce((p->>'cacheTtl')::bigint, cache_ttl)
  WHERE name = q;
END $$;
