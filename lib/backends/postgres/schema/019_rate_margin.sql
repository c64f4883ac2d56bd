-- Schema version 15: a rate limit is kept over its window and a margin (rateWindowMs() in
-- lib/backends/rules.ts: `per` and a twentieth of it, at most 100 ms). Starts are counted when a
-- worker reserves a task, and its function starts a few ms later, by a lag that varies from task
-- to task: without the margin, the starts the functions saw could put `max` + 1 of them within
-- `per` ms (docs/limits.md). take_slots is otherwise that of version 1.
CREATE OR REPLACE FUNCTION worq.rate_window(per bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT per + least(100, ceil(per / 20.0)::bigint) $$;

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
      OR (right(name, 1) = '.' AND starts_with(tname, name))) ORDER BY name COLLATE "C" LOOP
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
      OR (right(name, 1) = '.' AND starts_with(tname, name))) ORDER BY name COLLATE "C" LOOP
    IF l.spec ? 'concurrency' THEN
      INSERT INTO worq.holders (queue, name, id) VALUES (q, l.name, tid) ON CONFLICT DO NOTHING;
      holds := holds || l.name;
    END IF;
    IF l.spec ? 'rate' THEN INSERT INTO worq.starts (queue, name, t) VALUES (q, l.name, now); END IF;
  END LOOP;
  RETURN CASE WHEN cardinality(holds) = 0 THEN '{}'::jsonb ELSE jsonb_build_object('holds', to_jsonb(holds)) END;
END $$;
