-- Schema version 18: a schedule fires only from the definition stored. `broker.schedule()` stamps
-- a fresh `gen` in every schedule's body; fire_schedule takes the `gen` of the definition its
-- caller read and refuses when the stored one differs (a schedule replaced with the same next due
-- time was fired with the old call and arguments, and its next due time computed from the old
-- runs and limit). A body stored without `gen` (by an earlier version) matches a caller that read
-- none. Otherwise version 1's function (005_observe.sql); `gen` is new, so that one goes.
DROP FUNCTION worq.fire_schedule(text, text, bigint, bigint, jsonb, text);

CREATE FUNCTION worq.fire_schedule(q text, sid text, gen text, due bigint, next bigint,
  task jsonb, origin text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  b jsonb;
  qr worq.queues := worq.lock(q);
BEGIN
  SELECT body INTO b FROM worq.schedules WHERE queue = q AND id = sid FOR UPDATE;
  IF NOT FOUND OR (b->>'next')::bigint IS DISTINCT FROM due
    OR b->>'gen' IS DISTINCT FROM gen THEN
    RETURN false;
  END IF;
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
