-- Schema version 23: a fold that meets an inbox row it cannot read (written into the inbox by
-- something other than worq: a body that is not an object, a list that is not a list, a count whose
-- time is not a number) drops that row and folds the others. Until version 22 the fold failed on
-- it every time: the queue's events and metrics stopped for good, and every worker's fold and
-- every reader of events or metrics reported the error.

-- Drops the inbox rows of queue qr.name that flush() cannot read: each row is folded on its own,
-- under a name no queue has, in a subtransaction that is always undone (SQLSTATE WQ001 ends it);
-- one that fails with a data exception (SQLSTATE class 22) goes. Returns how many went. Runs only
-- after a fold failed so (fold() below).
CREATE FUNCTION worq.drop_unfoldable(qr worq.queues, fr worq.folds) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  r record;
  bad bigint[] := '{}';
  probe worq.queues := qr;
BEGIN
  probe.name := qr.name || E'\x01unfoldable';
  FOR r IN SELECT seq FROM worq.inbox WHERE queue = qr.name ORDER BY seq LOOP
    BEGIN
      UPDATE worq.inbox SET queue = probe.name WHERE seq = r.seq;
      PERFORM worq.flush(probe, fr);
      RAISE EXCEPTION USING ERRCODE = 'WQ001';
    EXCEPTION
      WHEN SQLSTATE 'WQ001' THEN NULL;
      WHEN data_exception THEN bad := bad || r.seq;
    END;
  END LOOP;
  DELETE FROM worq.inbox WHERE seq = ANY (bad);
  RETURN cardinality(bad);
END $$;

CREATE OR REPLACE FUNCTION worq.fold(q text, due boolean) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  fr worq.folds;
  qr worq.queues;
  now bigint := worq.now_ms();
  folded bigint;
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
  -- Version 23: a row the fold cannot read goes (drop_unfoldable()), and the others are folded.
  BEGIN
    folded := worq.flush(qr, fr);
  EXCEPTION WHEN data_exception THEN
    PERFORM worq.drop_unfoldable(qr, fr);
    folded := worq.flush(qr, fr);
  END;
  UPDATE worq.folds SET event_seq = folded, folded_at = now WHERE queue = q;
  RETURN true;
END $$;
