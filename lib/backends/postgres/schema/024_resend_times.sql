-- Schema version 20: an exchange sent again after its commit's reply was lost (pool.ts sends a
-- statement again when its connection drops, and in the instant between the commit and the reply
-- the first one committed) counted its finishes' wait and run times twice: a finish refused
-- because it had ended its task already (done, finish_tag its own token, an outcome that is not a
-- cancel's) counts none now. A run a cancel ended is still counted by its worker's refused finish,
-- and a run the sweep ended by the worker's late one (the sweep counts no times). A retry or an
-- ignoreResult finish sent again leaves nothing to be told by and still counts twice, as before.
-- exchange is that of version 16 otherwise.
CREATE OR REPLACE FUNCTION worq.exchange(q text, worker text, done jsonb, max integer)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  qr worq.queues;
  now bigint;
  f record;
  r worq.tasks;
  found_ boolean;
  stale text[] := '{}';
  ended text[];
  timing jsonb;
  reserved json;
  due bigint;
  folded bigint;
BEGIN
  -- hold()'s lock, taken here (version 14: a call fewer for every exchange).
  SELECT * INTO qr FROM worq.queues qs WHERE qs.name = q FOR UPDATE;
  IF NOT FOUND THEN qr := worq.hold(q); END IF;
  now := worq.now_ms();
  ended := CASE WHEN jsonb_array_length(done) = 0 THEN '{}'
    ELSE worq.end_plain(q, done, now) END;
  -- What end_plain did not end, one by one (none in the common case: then no loop at all).
  IF cardinality(ended) < jsonb_array_length(done) THEN
    FOR f IN SELECT * FROM jsonb_to_recordset(done)
      AS x(id text, token text, outcome text, "retryAt" bigint, release boolean, error jsonb,
        "runMs" bigint, "waitMs" bigint)
    LOOP
      CONTINUE WHEN f.id = ANY (ended);
      -- Wait and run times as the worker measured them (a release never ran): counted with the
      -- retry or the outcome, or on their own for a finish refused as stale (the sweep counts
      -- none), save one this very finish stored before: sent again (pool.ts: its connection was
      -- lost between the commit and the reply), its times were counted then.
      timing := CASE WHEN NOT coalesce(f.release, false)
          AND (f."runMs" IS NOT NULL OR f."waitMs" IS NOT NULL)
        THEN jsonb_build_object('run', f."runMs", 'w', f."waitMs") ELSE '{}' END;
      SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = f.id FOR UPDATE;
      found_ := FOUND;
      IF NOT found_ OR r.state <> 'processing' OR r.token IS DISTINCT FROM f.token THEN
        IF timing <> '{}' AND NOT (found_ AND r.state = 'done'
            AND r.finish_tag IS NOT DISTINCT FROM f.token AND left(r.outcome, 1) <> 'k') THEN
          PERFORM worq.emit(q, jsonb_build_object('t', now) || timing);
        END IF;
        -- Quiet: a release (the task never started), or the end of a run cancelled as it ran.
        IF NOT coalesce(f.release, false) AND NOT (found_ AND r.state = 'done'
            AND r.finish_tag IS NOT DISTINCT FROM f.token) THEN
          stale := stale || f.id;
        END IF;
        CONTINUE;
      END IF;
      IF coalesce(f.release, false) THEN
        PERFORM worq.task_event('enqueued', r, now, jsonb_strip_nulls(jsonb_build_object(
          'released', true, 'attempt', r.attempt, 'workerId', r.worker_id)));
        PERFORM worq.free_slots(q, f.id, r.holds);
        UPDATE worq.tasks SET state = 'enqueued', token = NULL, lease_until = NULL, holds = NULL,
          attempt = attempt - 1, line_seq = -nextval('worq.line_seq') WHERE queue = q AND id = f.id;
        PERFORM worq.wake(q);
      ELSIF f."retryAt" IS NOT NULL THEN
        PERFORM worq.retry(q, f.id, f."retryAt", jsonb_build_object('error', f.error), now, timing);
      ELSE
        PERFORM worq.finish(q, f.id, f.outcome, now, false, f.token, timing);
      END IF;
    END LOOP;
  END IF;
  reserved := worq.reserve(qr, worker, max, now);
  IF json_array_length(reserved) < max THEN
    SELECT min(due_at) INTO due FROM worq.tasks WHERE queue = q AND state = 'delayed';
  END IF;
  -- FOLD_MS = 1 000 (100 until version 9): a running queue's inbox holds about a second of
  -- records. The row is read, not locked: a fold under way holds it.
  SELECT folded_at INTO folded FROM worq.folds WHERE queue = q;
  -- json, not jsonb: built as text, the reply costs a third of what jsonb's did (5 000 reserved
  -- tasks: 22 against 60 ms). nextDueIn is null when nothing is delayed (or the batch is full).
  RETURN json_build_object('stale', stale, 'reserved', reserved,
    'nextDueIn', CASE WHEN due IS NOT NULL THEN greatest(0, due - now) END,
    'fold', folded IS NULL OR now - folded >= 1000);
END $$;
