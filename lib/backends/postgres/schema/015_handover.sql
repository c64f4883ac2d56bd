-- Schema version 11: handover. An exchange that reserved fewer tasks than its worker could start
-- parks the worker (a row of `parks`, for up to the park's length); a plain batch enqueue that
-- finds parked workers, and nothing already waiting in line, writes its first tasks straight into
-- the parked workers' hands (state processing, under a token of theirs) and notifies each
-- worker's process with its tasks. The worker starts them without an exchange of its own: a lone
-- call makes one statement fewer. lib/backends/postgres/enqueue.ts writes the handover; docs/postgres.md
-- ("Handover") has the rules.

-- One row per parked worker: `origin` its process's channel (`<schema>.o.<origin>`), `pid` the
-- server process of that process's listening connection (a process that died leaves a park whose
-- pid is gone: no enqueue hands it anything), `slots` how many tasks it takes, `until` when the
-- park ends (epoch ms). Unlogged: a park lasts a second, and a server that restarts forgets them
-- (the workers exchange again when their listening connection comes back).
CREATE UNLOGGED TABLE worq.parks (
  queue text NOT NULL,
  worker text NOT NULL,
  origin text NOT NULL,
  pid integer NOT NULL,
  slots integer NOT NULL,
  until bigint NOT NULL,
  PRIMARY KEY (queue, worker)
);

-- Exchange, and park the worker when it reserved fewer than `max` (park_ms > 0; at most
-- park_slots tasks handed, never more than the slots left). Any other exchange of the worker
-- ends its park.
CREATE FUNCTION worq.exchange(q text, wid text, done jsonb, max integer, park_ms bigint,
  park_slots integer, channel text, listener integer)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
  reply json := worq.exchange(q, wid, done, max);
  got integer := json_array_length(reply->'reserved');
BEGIN
  IF park_ms > 0 AND got < max AND least(max - got, park_slots) > 0
      AND NOT coalesce((SELECT paused FROM worq.queues WHERE name = q), false) THEN
    INSERT INTO worq.parks AS p (queue, worker, origin, pid, slots, until)
      VALUES (q, wid, channel, listener, least(max - got, park_slots), worq.now_ms() + park_ms)
      ON CONFLICT (queue, worker) DO UPDATE SET origin = excluded.origin, pid = excluded.pid,
        slots = excluded.slots, until = excluded.until;
  ELSE
    DELETE FROM worq.parks p WHERE p.queue = q AND p.worker = wid;
  END IF;
  RETURN reply;
END $$;

-- A task handed over, as the exchange's reply gives a reserved task (reserved() with
-- `worq_reply.rows` on): the notification's rows, and those handed() reads.
CREATE FUNCTION worq.handed_row(t worq.tasks) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_array(t.id, t.name, t.payload, t.deps, t.on_error, t.ignore_result,
    t.result_timeout, t.heartrate, t.attempts, t.backoff, t.run_at, t.timeout, t.priority,
    t.metadata, t.cache, t.trace, t.token, t.attempt, to_jsonb(t.slots),
    coalesce(t.ready_at, t.created_at))
$$;

-- The tasks handed to `worker` that are still processing under a handover's token (`<worker>:h<n>`),
-- as reserve() writes them: read again by a process whose listening connection was lost (their
-- notification may have gone with it).
CREATE FUNCTION worq.handed(q text, worker text) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT coalesce(json_agg(worq.handed_row(t) ORDER BY t.priority, t.line_seq), '[]')
  FROM worq.tasks t
  WHERE t.queue = q AND t.state = 'processing' AND t.worker_id = worker
    AND starts_with(t.token, worker || ':h')
$$;

-- A worker leaving: its park goes, and what it was handed and never took (not in `took`, the
-- tokens its process passed on to it) goes back first in line, its attempt uncounted.
CREATE FUNCTION worq.unpark(q text, worker text, took text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  DELETE FROM worq.parks p WHERE p.queue = q AND p.worker = unpark.worker;
  UPDATE worq.tasks t SET state = 'enqueued', token = NULL, lease_until = NULL, started_at = NULL,
    worker_id = NULL, attempt = t.attempt - 1, line_seq = -nextval('worq.line_seq')
  WHERE t.queue = q AND t.state = 'processing' AND t.worker_id = unpark.worker
    AND starts_with(t.token, unpark.worker || ':h') AND NOT (t.token = ANY (took));
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN PERFORM worq.wake(q); END IF;
  RETURN n;
END $$;
