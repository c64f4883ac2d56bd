-- Schema version 22, second part (after 026_exchange_again.sql, in the same transaction): the
-- exchange answers a try sent again as its first try did (its reservations, its memo), and the
-- sweep drops memos older than ten minutes.

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
  -- Version 22: the call's id, and whether this is the call sent again after its connection
  -- dropped (its first try may have committed); the ignoreResult tasks it ended (their rows go)
  -- and those it put back for a retry (remember_ended()).
  this_call text := coalesce(current_setting('worq_call.id', true), '');
  again boolean := coalesce(current_setting('worq_call.again', true), '') = 'on';
  ended_here text[] := '{}';
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
      -- retry or the outcome, or, for a refused finish, only where a cancel ended the run.
      timing := CASE WHEN NOT coalesce(f.release, false)
          AND (f."runMs" IS NOT NULL OR f."waitMs" IS NOT NULL)
        THEN jsonb_build_object('run', f."runMs", 'w', f."waitMs") ELSE '{}' END;
      SELECT * INTO r FROM worq.tasks WHERE queue = q AND id = f.id FOR UPDATE;
      found_ := FOUND;
      IF NOT found_ OR r.state <> 'processing' OR r.token IS DISTINCT FROM f.token THEN
        -- Refused. Its run was counted by the call that ended it (the sweep; a cancel of an
        -- ignoreResult task; this very finish, its exchange sent again after the commit: pool.ts),
        -- save a run a cancel ended, counted here once: finish_tag then gets a `+` (no token ends
        -- in one), which the same exchange sent again finds.
        IF found_ AND r.finish_tag = f.token AND r.state = 'done'
            AND left(r.outcome, 1) = 'k' AND timing <> '{}' THEN
          PERFORM worq.emit(q, jsonb_build_object('t', now) || timing);
          UPDATE worq.tasks SET finish_tag = f.token || '+' WHERE queue = q AND id = f.id;
        END IF;
        -- Quiet: a release (the task never started), the end of a run cancelled as it ran, and a
        -- finish or retry this very finish applied before (its exchange sent again).
        -- Sent again: an ignoreResult task its first try ended left no row, and a task it put back
        -- for a retry may have run and ended since; both left a memo.
        IF again AND this_call <> '' AND EXISTS (SELECT 1 FROM worq.exchange_memos m
            WHERE m.queue = q AND m.worker = exchange.worker AND m.call_id = this_call
              AND f.id = ANY (m.ids)) THEN
          CONTINUE;
        END IF;
        IF NOT coalesce(f.release, false)
            AND NOT (found_ AND coalesce(r.finish_tag IN (f.token, f.token || '+'), false)) THEN
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
        PERFORM worq.retry(q, f.id, f."retryAt", jsonb_build_object('error', f.error), now, timing,
          f.token);
        ended_here := ended_here || f.id;
      ELSE
        PERFORM worq.finish(q, f.id, f.outcome, now, false, f.token, timing);
        IF r.ignore_result THEN ended_here := ended_here || f.id; END IF;
      END IF;
    END LOOP;
    IF cardinality(ended_here) > 0 THEN
      PERFORM worq.remember_ended(q, worker, ended_here, now);
    END IF;
  END IF;
  -- Sent again: the tasks its first try reserved, if that try committed (their tokens name the
  -- call), are this reply's; none, and it reserves as any exchange.
  IF again AND this_call <> '' THEN
    SELECT json_agg(worq.reserved(t) ORDER BY t.priority, t.line_seq) INTO reserved
    FROM worq.tasks t
    WHERE t.queue = q AND t.state = 'processing' AND t.worker_id = exchange.worker
      AND starts_with(t.token, exchange.worker || ':c' || this_call || '.');
  END IF;
  IF reserved IS NULL THEN reserved := worq.reserve(qr, worker, max, now); END IF;
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

CREATE OR REPLACE FUNCTION worq.sweep(q text, "interval" bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  qr worq.queues;
  now bigint;
  last bigint;
  stalled boolean;
  handled integer := 0;
  t worq.tasks;
  lapsed text := 'the worker stopped renewing its lease (it died, hung or lost its connection)';
BEGIN
  -- The guard is read without the lock first: the pools of a queue that swept recently wait for
  -- nobody (nor hold up the queue's exchanges).
  IF EXISTS (SELECT 1 FROM worq.queues WHERE name = q
      AND worq.now_ms() - last_sweep < "interval") THEN
    RETURN 0;
  END IF;
  qr := worq.lock(q);
  now := worq.now_ms();
  last := qr.swept_at;
  IF now - qr.last_sweep < "interval" THEN RETURN 0; END IF;
  stalled := last IS NOT NULL AND now - last > 2 * "interval" + 1000;
  UPDATE worq.queues SET last_sweep = now, swept_at = now WHERE name = q;
  DELETE FROM worq.tasks WHERE ctid = ANY (ARRAY(SELECT ctid FROM worq.tasks
    WHERE queue = q AND state = 'done' AND expires_at <= now LIMIT 1000));
  DELETE FROM worq.cache WHERE queue = q AND expires_at <= now;
  DELETE FROM worq.workers WHERE queue = q AND until <= now;
  DELETE FROM worq.exchange_memos WHERE queue = q AND at <= now - 600000;
  FOR t IN SELECT * FROM worq.tasks
      WHERE queue = q AND state = 'processing' AND lease_until < now ORDER BY lease_until FOR UPDATE
  LOOP
    IF stalled AND t.lease_until > last THEN
      UPDATE worq.tasks SET lease_until = now + worq.lease_ms(t.heartrate) WHERE queue = q AND id = t.id;
      CONTINUE;
    END IF;
    handled := handled + 1;
    -- This call ends the run: it counts its wait and its time (its worker's late finish, if it
    -- comes, is refused and counts nothing, exchange).
    IF t.attempt < t.attempts THEN
      PERFORM worq.retry(q, t.id, now + worq.backoff_delay(t.backoff, t.attempt),
        jsonb_build_object('error', jsonb_build_object('name', 'TaskExpired', 'message', lapsed)), now,
        worq.run_times(t, now));
    ELSE
      PERFORM worq.finish(q, t.id, worq.expired_outcome(t.name, q, t.id, lapsed, t.attempt), now,
        false, NULL, worq.run_times(t, now));
    END IF;
  END LOOP;
  RETURN handled;
END $$;
