-- Schema version 23, second part: a limit whose stored spec does not read as one (written by
-- something other than worq: `concurrency` or a rate's `max` or `per` not a whole number) binds
-- nothing. Until version 22 take_slots() cast it on every reservation of its queue, and the cast's
-- error failed every exchange: nothing of the queue ran. (limits() leaves such a spec out too:
-- lib/backends/postgres/queue-store.ts.)

-- Whether a limit's spec reads as one (readableLimit() in lib/backends/queue-records.ts).
CREATE FUNCTION worq.limit_readable(spec jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_typeof(spec) = 'object' AND (spec ? 'concurrency' OR spec ? 'rate')
    AND (NOT spec ? 'concurrency' OR (jsonb_typeof(spec->'concurrency') = 'number'
      AND spec->>'concurrency' ~ '^[0-9]{1,15}$'))
    AND (NOT spec ? 'rate' OR (jsonb_typeof(spec->'rate') = 'object'
      AND jsonb_typeof(spec->'rate'->'max') = 'number'
      AND spec->'rate'->>'max' ~ '^[0-9]{1,15}$'
      AND jsonb_typeof(spec->'rate'->'per') = 'number'
      AND spec->'rate'->>'per' ~ '^[1-9][0-9]{0,14}$'))
$$;

CREATE OR REPLACE FUNCTION worq.take_slots(q text, tid text, tname text, now bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  l record;
  used bigint;
  first bigint;
  win bigint;
  holds text[] := '{}';
BEGIN
  FOR l IN SELECT name, spec FROM worq.limits WHERE queue = q AND (name = '*' OR name = tname
      OR (right(name, 1) = '.' AND starts_with(tname, name))) AND worq.limit_readable(spec)
      ORDER BY name COLLATE "C" LOOP
    IF l.spec ? 'concurrency' THEN
      SELECT count(*) INTO used FROM worq.holders WHERE queue = q AND name = l.name;
      IF used >= (l.spec->>'concurrency')::bigint THEN RETURN jsonb_build_object('limit', l.name); END IF;
    END IF;
    IF l.spec ? 'rate' THEN
      win := worq.rate_window((l.spec->'rate'->>'per')::bigint);
      DELETE FROM worq.starts WHERE queue = q AND name = l.name AND t <= now - win;
      SELECT count(*), min(t) INTO used, first FROM worq.starts WHERE queue = q AND name = l.name;
      IF used >= (l.spec->'rate'->>'max')::bigint THEN
        RETURN jsonb_build_object('until', first + win);
      END IF;
    END IF;
  END LOOP;
  FOR l IN SELECT name, spec FROM worq.limits WHERE queue = q AND (name = '*' OR name = tname
      OR (right(name, 1) = '.' AND starts_with(tname, name))) AND worq.limit_readable(spec)
      ORDER BY name COLLATE "C" LOOP
    IF l.spec ? 'concurrency' THEN
      INSERT INTO worq.holders (queue, name, id) VALUES (q, l.name, tid) ON CONFLICT DO NOTHING;
      holds := holds || l.name;
    END IF;
    IF l.spec ? 'rate' THEN INSERT INTO worq.starts (queue, name, t) VALUES (q, l.name, now); END IF;
  END LOOP;
  RETURN CASE WHEN cardinality(holds) = 0 THEN '{}'::jsonb ELSE jsonb_build_object('holds', to_jsonb(holds)) END;
END $$;
