-- Folding the inbox into events (numbered per queue, the last events_max kept) and per-minute
-- metrics (a day of minutes, and the totals under minute 0). The caller holds the queue's lock.
CREATE OR REPLACE FUNCTION worq.count(q text, p_minute bigint, p_kind text, p_run bigint,
  p_wait bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  b integer;
BEGIN
  INSERT INTO worq.metrics (queue, minute) VALUES (q, p_minute) ON CONFLICT DO NOTHING;
  IF FOUND THEN
    DELETE FROM worq.metrics WHERE queue = q AND minute > 0 AND minute <= p_minute - 1440 * 60000;
  END IF;
  INSERT INTO worq.metrics (queue, minute) VALUES (q, 0) ON CONFLICT DO NOTHING;
  IF p_kind IS NOT NULL THEN
    UPDATE worq.metrics SET completed = completed + (p_kind = 'c')::integer,
      failed = failed + (p_kind = 'f')::integer, retried = retried + (p_kind = 'r')::integer,
      expired = expired + (p_kind = 'x')::integer, cancelled = cancelled + (p_kind = 'k')::integer
    WHERE queue = q AND minute IN (p_minute, 0);
  END IF;
  IF p_run IS NOT NULL THEN
    b := CASE WHEN p_run <= 1 THEN 0 ELSE least(ceil(log(2, p_run::numeric))::integer, 21) END;
    UPDATE worq.metrics SET run[b + 1] = run[b + 1] + 1, run_sum = run_sum + p_run
    WHERE queue = q AND minute IN (p_minute, 0);
  END IF;
  IF p_wait IS NOT NULL THEN
    b := CASE WHEN p_wait <= 1 THEN 0 ELSE least(ceil(log(2, p_wait::numeric))::integer, 21) END;
    UPDATE worq.metrics SET wait[b + 1] = wait[b + 1] + 1, wait_sum = wait_sum + p_wait
    WHERE queue = q AND minute IN (p_minute, 0);
  END IF;
END $$;

CREATE OR REPLACE FUNCTION worq.flush(qr worq.queues) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  q text := qr.name;
  items jsonb;
  it jsonb;
  last bigint := qr.event_seq;
  t bigint;
BEGIN
  WITH gone AS (DELETE FROM worq.inbox WHERE queue = q RETURNING seq, body)
  SELECT jsonb_agg(body ORDER BY seq) INTO items FROM gone;
  IF items IS NULL THEN RETURN; END IF;
  FOR it IN SELECT * FROM jsonb_array_elements(items) LOOP
    IF it ? 'e' THEN
      IF qr.events THEN
        last := last + 1;
        INSERT INTO worq.events (queue, n, body) VALUES (q, last, it->'e');
      END IF;
    ELSIF qr.metrics THEN
      t := (it->>'t')::bigint;
      PERFORM worq.count(q, t - t % 60000, it->>'k', (it->>'run')::bigint, (it->>'w')::bigint);
    END IF;
  END LOOP;
  IF last <> qr.event_seq THEN
    UPDATE worq.queues SET event_seq = last WHERE name = q;
    DELETE FROM worq.events WHERE queue = q AND n <= last - qr.events_max;
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
    PERFORM worq.enqueue_one(q, task, origin, qr.listing, worq.now_ms());
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
