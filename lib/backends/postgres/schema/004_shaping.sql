-- Limits and the result cache (docs/limits.md, docs/cache.md), as shaping.ts does for memory://.

-- Checks every limit binding task `tname`; {limit} (a full concurrency limit), {until} (a full
-- rate window), or {holds} after taking a slot of each concurrency limit and counting the start.
CREATE OR REPLACE FUNCTION worq.take_slots(q text, tid text, tname text, now bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  l record;
  used bigint;
  first bigint;
  holds text[] := '{}';
BEGIN
  FOR l IN SELECT name, spec FROM worq.limits WHERE queue = q AND (name = '*' OR name = tname
      OR (right(name, 1) = '.' AND starts_with(tname, name))) ORDER BY name COLLATE "C" LOOP
    IF l.spec ? 'concurrency' THEN
      SELECT count(*) INTO used FROM worq.holders WHERE queue = q AND name = l.name;
      IF used >= (l.spec->>'concurrency')::bigint THEN RETURN jsonb_build_object('limit', l.name); END IF;
    END IF;
    IF l.spec ? 'rate' THEN
      DELETE FROM worq.starts WHERE queue = q AND name = l.name
        AND t <= now - (l.spec->'rate'->>'per')::bigint;
      SELECT count(*), min(t) INTO used, first FROM worq.starts WHERE queue = q AND name = l.name;
      IF used >= (l.spec->'rate'->>'max')::bigint THEN
        RETURN jsonb_build_object('until', first + (l.spec->'rate'->>'per')::bigint);
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

-- Gives back the slots a task holds; for each, the first task waiting for that limit goes back to
-- the front of its line. True when any went back.
CREATE OR REPLACE FUNCTION worq.free_slots(q text, tid text, holds text[]) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  lname text;
  next text;
  woke boolean := false;
BEGIN
  IF holds IS NULL THEN RETURN false; END IF;
  FOREACH lname IN ARRAY holds LOOP
    DELETE FROM worq.holders WHERE queue = q AND name = lname AND id = tid;
    SELECT id INTO next FROM worq.tasks WHERE queue = q AND state = 'held' AND held_by = lname
      ORDER BY priority, line_seq LIMIT 1 FOR UPDATE;
    CONTINUE WHEN NOT FOUND;
    UPDATE worq.tasks SET state = 'enqueued', held_by = NULL, line_seq = -nextval('worq.line_seq')
      WHERE queue = q AND id = next;
    woke := true;
  END LOOP;
  UPDATE worq.tasks SET holds = NULL WHERE queue = q AND id = tid;
  RETURN woke;
END $$;

-- Sets (spec) or removes (NULL) a limit; true when it changed something.
CREATE OR REPLACE FUNCTION worq.set_limit(q text, lname text, spec jsonb) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  had jsonb;
  tid text;
BEGIN
  PERFORM worq.lock(q);
  SELECT limits.spec INTO had FROM worq.limits WHERE queue = q AND name = lname;
  IF spec IS NULL THEN
    IF had IS NULL THEN RETURN false; END IF;
    DELETE FROM worq.limits WHERE queue = q AND name = lname;
    DELETE FROM worq.holders WHERE queue = q AND name = lname;
    DELETE FROM worq.starts WHERE queue = q AND name = lname;
    -- Tasks that waited for it go back to the front of their line, in their order.
    FOR tid IN SELECT id FROM worq.tasks WHERE queue = q AND state = 'held' AND held_by = lname
        ORDER BY priority DESC, line_seq DESC LOOP
      UPDATE worq.tasks SET state = 'enqueued', held_by = NULL, line_seq = -nextval('worq.line_seq')
        WHERE queue = q AND id = tid;
    END LOOP;
    PERFORM worq.wake(q);
    RETURN true;
  END IF;
  INSERT INTO worq.limits (queue, name, spec) VALUES (q, lname, spec)
    ON CONFLICT (queue, name) DO UPDATE SET spec = excluded.spec;
  PERFORM worq.wake(q);
  RETURN had IS DISTINCT FROM spec;
END $$;

-- The live cached outcome under `k`, marked as just used; NULL when there is none.
CREATE OR REPLACE FUNCTION worq.cache_hit(q text, k text, now bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  e record;
BEGIN
  SELECT outcome, expires_at INTO e FROM worq.cache WHERE queue = q AND key = k FOR UPDATE;
  IF NOT FOUND THEN RETURN NULL; END IF;
  IF e.expires_at <= now THEN
    DELETE FROM worq.cache WHERE queue = q AND key = k;
    RETURN NULL;
  END IF;
  UPDATE worq.cache SET used = nextval('worq.line_seq') WHERE queue = q AND key = k;
  RETURN e.outcome;
END $$;

-- Drops expired entries, then the least recently used past the queue's cacheSize.
CREATE OR REPLACE FUNCTION worq.trim_cache(q text, now bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  size integer;
  n bigint;
BEGIN
  DELETE FROM worq.cache WHERE queue = q AND expires_at <= now;
  SELECT coalesce((SELECT cache_size FROM worq.queues WHERE name = q), 10000) INTO size;
  SELECT count(*) INTO n FROM worq.cache WHERE queue = q;
  IF n > size THEN
    DELETE FROM worq.cache WHERE queue = q AND key IN (SELECT key FROM worq.cache WHERE queue = q
      ORDER BY used LIMIT n - size);
  END IF;
END $$;

CREATE OR REPLACE FUNCTION worq.cache_store(q text, k text, outcome text, ttl bigint, now bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO worq.cache (queue, key, outcome, expires_at, used)
  VALUES (q, k, outcome, now + ttl, nextval('worq.line_seq'))
  ON CONFLICT (queue, key) DO UPDATE SET outcome = excluded.outcome,
    expires_at = excluded.expires_at, used = excluded.used;
  PERFORM worq.trim_cache(q, now);
END $$;

-- SHA-1 (hex) of the UTF-8 text, as rules.ts cacheKey computes it with node:crypto (pgcrypto is
-- not assumed to be installed).
CREATE OR REPLACE FUNCTION worq.sha1_hex(msg text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  m bytea := convert_to(msg, 'UTF8');
  bits bigint := octet_length(convert_to(msg, 'UTF8'))::bigint * 8;
  mask bigint := 4294967295;
  h bigint[] := ARRAY[x'67452301'::bigint, x'EFCDAB89'::bigint, x'98BADCFE'::bigint,
    x'10325476'::bigint, x'C3D2E1F0'::bigint];
  w bigint[];
  a bigint; b bigint; c bigint; d bigint; e bigint; f bigint; k bigint; t bigint;
  o integer;
BEGIN
  m := m || '\x80'::bytea;
  IF octet_length(m) % 64 <> 56 THEN
    m := m || decode(repeat('00', (56 - octet_length(m) % 64 + 64) % 64), 'hex');
  END IF;
  m := m || int8send(bits);
  FOR chunk IN 0 .. octet_length(m) / 64 - 1 LOOP
    w := array_fill(0::bigint, ARRAY[80], ARRAY[0]);
    FOR i IN 0 .. 15 LOOP
      o := chunk * 64 + i * 4;
      w[i] := (get_byte(m, o)::bigint << 24) | (get_byte(m, o + 1)::bigint << 16)
        | (get_byte(m, o + 2)::bigint << 8) | get_byte(m, o + 3)::bigint;
    END LOOP;
    FOR i IN 16 .. 79 LOOP
      t := w[i - 3] # w[i - 8] # w[i - 14] # w[i - 16];
      w[i] := ((t << 1) | (t >> 31)) & mask;
    END LOOP;
    a := h[1]; b := h[2]; c := h[3]; d := h[4]; e := h[5];
    FOR i IN 0 .. 79 LOOP
      IF i < 20 THEN f := (b & c) | ((b # mask) & d); k := 1518500249;
      ELSIF i < 40 THEN f := b # c # d; k := 1859775393;
      ELSIF i < 60 THEN f := (b & c) | (b & d) | (c & d); k := 2400959708;
      ELSE f := b # c # d; k := 3395469782;
      END IF;
      t := ((((a << 5) | (a >> 27)) & mask) + f + e + k + w[i]) & mask;
      e := d; d := c; c := ((b << 30) | (b >> 2)) & mask; b := a; a := t;
    END LOOP;
    h[1] := (h[1] + a) & mask; h[2] := (h[2] + b) & mask; h[3] := (h[3] + c) & mask;
    h[4] := (h[4] + d) & mask; h[5] := (h[5] + e) & mask;
  END LOOP;
  RETURN lpad(to_hex(h[1]), 8, '0') || lpad(to_hex(h[2]), 8, '0') || lpad(to_hex(h[3]), 8, '0')
    || lpad(to_hex(h[4]), 8, '0') || lpad(to_hex(h[5]), 8, '0');
END $$;

-- plainOutcomeJson in rules.ts: the plain JSON of a completed outcome's value, or NULL.
CREATE OR REPLACE FUNCTION worq.plain_outcome_json(outcome text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF NOT starts_with(outcome, 'c{"json":') OR right(outcome, 1) <> '}' THEN RETURN NULL; END IF;
  BEGIN
    IF (substr(outcome, 2))::jsonb ? 'meta' THEN RETURN NULL; END IF;
  EXCEPTION WHEN others THEN
    RETURN NULL;
  END;
  RETURN substr(outcome, 10, length(outcome) - 10);
END $$;

-- readyCacheKey in rules.ts.
CREATE OR REPLACE FUNCTION worq.ready_cache_key(tname text, payload text, template text,
  slots text[]) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  txt text := template;
  j text;
  ok boolean := true;
  tail text := '';
BEGIN
  IF coalesce(template, '') <> '' THEN
    FOR i IN 1 .. coalesce(cardinality(slots), 0) LOOP
      j := worq.plain_outcome_json(slots[i]);
      IF j IS NULL THEN ok := false; EXIT; END IF;
      txt := replace(txt, '"\u0001worq:' || (i - 1) || '\u0001"', j);
    END LOOP;
    IF ok THEN RETURN worq.sha1_hex(tname || E'\n' || txt); END IF;
  END IF;
  FOR i IN 1 .. coalesce(cardinality(slots), 0) LOOP tail := tail || E'\n' || slots[i]; END LOOP;
  RETURN worq.sha1_hex(tname || E'\n' || payload || tail);
END $$;
