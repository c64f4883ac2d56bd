-- Schema version 7: a plain batch's `enqueued` events go into the inbox as lists. The batch's
-- statement (lib/backends/postgres/enqueue.ts) wrote one JSON object per task and cast the whole
-- to jsonb, about a fifth of the statement (2.5 of 13 ms for 1 000 calls): the server printed and
-- parsed every object. It now writes `{"en": [time, [id, …], [name, …]]}`, built from arrays with
-- no text parsed (10.9 ms), and the fold expands it into the same event objects as before: the
-- work leaves the enqueue for the fold, which no call waits for. Bodies written the old way (by a
-- process of the previous version still running) fold as before.

-- The `enqueued` events of a plain batch from its inbox list `en`: [time, ids, names].
CREATE FUNCTION worq.enqueued_events(en jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object('type', 'enqueued', 'id', x.id, 'name', x.name,
      'time', en->0) ORDER BY x.o), '[]')
  FROM ROWS FROM (jsonb_array_elements(en->1), jsonb_array_elements(en->2))
    WITH ORDINALITY AS x(id, name, o)
$$;

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
  -- `body || '{}'` is the body itself, read once: a big body (a batch's events) is stored out of
  -- line (TOAST), and each use of a column reference would fetch and decompress it again (seven
  -- uses below: 12 inbox rows of 3 000 events took 15–20 ms to fold, most of it in those reads).
  WITH gone AS (DELETE FROM worq.inbox WHERE queue = q RETURNING seq, body || '{}' AS body),
  -- An inbox row holds one event (`e`) or several in order (`es`; `en`, a plain batch's
  -- `enqueued` events as lists, expanded here), and a count at time `t` (its kind `k`, a run and
  -- wait time), or one of them. A list of 10 events or more goes as it is, one events row (cut
  -- into rows of EVENT_SET, 1 000, when longer: a bulk enqueue); a run of shorter lists between
  -- two such rows (sequential calls: an event or two each) goes into rows of up to 1 000
  -- together. Numbered on in inbox order.
  sized AS (
    SELECT seq, es, jsonb_array_length(es) AS c FROM (
      SELECT seq, CASE WHEN body ? 'es' THEN body->'es'
          WHEN body ? 'en' THEN worq.enqueued_events(body->'en')
          ELSE jsonb_build_array(body->'e') END AS es
      FROM gone WHERE qr.events AND (body ? 'es' OR body ? 'e' OR body ? 'en')
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
