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
  -- (A park on a paused queue is never used: enqueue_batch hands nothing over while it is paused.)
  IF park_ms > 0 AND got < max AND least(max - got, park_slots) > 0 THEN
    INSERT INTO worq.parks AS p (queue, worker, origin, pid, slots, until)
      VALUES (q, wid, channel, listener, least(max - got, park_slots), worq.now_ms() + park_ms)
      ON CONFLICT (queue, worker) DO UPDATE SET origin = excluded.origin, pid = excluded.pid,
        slots = excluded.slots, until = excluded.until;
  ELSE
    DELETE FROM worq.parks p WHERE p.queue = q AND p.worker = wid;
  END IF;
  RETURN reply;
END $$;

-- A reserved task as an array of its fields (lib/backends/postgres/reserved.ts): what reserved()
-- answers when the statement asks for arrays (version 8), and what a handover carries. One
-- definition for both, so the layout decodeReserved() reads cannot drift between them.
CREATE FUNCTION worq.reserved_row(t worq.tasks) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_array(t.id, t.name, t.payload, t.deps, t.on_error, t.ignore_result,
    t.result_timeout, t.heartrate, t.attempts, t.backoff, t.run_at, t.timeout, t.priority,
    t.metadata, t.cache, t.trace, t.token, t.attempt, to_jsonb(t.slots),
    coalesce(t.ready_at, t.created_at))
$$;

CREATE OR REPLACE FUNCTION worq.reserved(t worq.tasks) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN current_setting('worq_reply.rows', true) = 'on' THEN worq.reserved_row(t)
  ELSE
    json_build_object('id', t.id, 'name', t.name, 'payload', t.payload, 'deps', t.deps,
      'onError', t.on_error, 'ignoreResult', t.ignore_result, 'resultTimeout', t.result_timeout,
      'heartrate', t.heartrate, 'attempts', t.attempts, 'backoff', t.backoff, 'runAt', t.run_at,
      'timeout', t.timeout, 'priority', t.priority, 'metadata', t.metadata, 'cache', t.cache,
      'trace', t.trace, 'token', t.token, 'attempt', t.attempt, 'slots', to_jsonb(t.slots),
      'dueAt', coalesce(t.ready_at, t.created_at))
  END
$$;

-- The tasks handed to `worker` that are still processing under a handover's token (`<worker>:h<n>`),
-- as reserve() writes them: read again by a process whose listening connection was lost (their
-- notification may have gone with it).
CREATE FUNCTION worq.handed(q text, worker text) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT coalesce(json_agg(worq.reserved_row(t) ORDER BY t.priority, t.line_seq), '[]')
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

-- A batch of plain calls (no Deferred argument, no result cache), written by one call of this
-- function (lib/backends/postgres/enqueue.ts; the statement was the process's own until version
-- 10): each task straight into its line (or the delayed set) in the batch's order, one inbox row
-- for their `enqueued` events, one wake-up. `batch` holds the rows under one-letter keys, what
-- differs from the defaults (plainRow() of enqueue.ts); `backoff` the batch's shared backoff, null
-- when each row has its own. Returns how many tasks it wrote (fewer: an id was taken).
-- With a worker parked on the queue, the handover: when the queue is neither paused nor limited,
-- nothing waits in its line, and the park's process still listens, the batch's first tasks due
-- now (by priority, then in the batch's order) go straight into a parked worker's hands, as
-- many as its park has slots (processing, under a token `<worker>:h<n>`), their `started` events
-- after the batch's `enqueued` ones, and the worker's process is notified with its tasks
-- (`{"h":[queue, worker, rows]}`, rows null past 7 800 bytes: it reads them, handed()); the rest
-- joins the line, and the queue's workers are woken only for that rest. One park per batch: a
-- lone call, where a handover saves the most, needs one, and a second worker parked is woken.
-- Two statements, one per case: the handover's takes about a quarter more time, which a queue
-- that keeps its workers busy (nobody parked) does not pay.
CREATE FUNCTION worq.enqueue_batch(q text, batch json, origin text, tag text, backoff jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
  rest integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM worq.parks p WHERE p.queue = q) THEN
    WITH s AS (
      SELECT worq.now_ms() AS now,
        coalesce((SELECT qs.listing FROM worq.queues qs WHERE qs.name = q), true) AS listing,
        coalesce((SELECT qs.events FROM worq.queues qs WHERE qs.name = q), true) AS events
    ), ins AS (
      INSERT INTO worq.tasks AS r (queue, id, name, state, payload, on_error, ignore_result,
        result_timeout, heartrate, attempts, backoff, run_at, timeout, priority, metadata, trace,
        created_at, listed, origin, enqueue_tag, due_at, ready_at, line_seq)
      SELECT q, x.i, x.n, CASE WHEN x.u > s.now THEN 'delayed' ELSE 'enqueued' END,
        x.p, coalesce(x.o, 'fail'), coalesce(x.g, false), x.r, x.h, x.a,
        coalesce(x.b::jsonb, enqueue_batch.backoff), coalesce(x.u, 0), coalesce(x.t, 0),
        coalesce(x.y, 0), coalesce(x.m, ''), coalesce(x.c, ''),
        s.now, s.listing, CASE WHEN x.g THEN NULL ELSE enqueue_batch.origin END, tag,
        CASE WHEN x.u > s.now THEN x.u END,
        CASE WHEN x.u > s.now THEN NULL ELSE s.now END, nextval('worq.line_seq')
      FROM s, ROWS FROM (json_to_recordset(batch) AS (i text, n text, p text, o text, g boolean,
        r bigint, h bigint, a integer, b text, u bigint, t bigint, y integer, m text, c text))
        WITH ORDINALITY AS x
      ORDER BY x.ordinality
      ON CONFLICT (queue, id) DO NOTHING
      RETURNING r.id, r.name, r.created_at, r.line_seq
    ), logged AS (
      INSERT INTO worq.inbox (queue, body)
      SELECT q, json_build_object('en', json_build_array(min(ins.created_at),
        to_json(array_agg(ins.id ORDER BY ins.line_seq)),
        to_json(array_agg(ins.name ORDER BY ins.line_seq))))
      FROM ins HAVING count(*) > 0 AND (SELECT s.events FROM s)
    )
    SELECT count(*)::integer INTO n FROM ins;
    PERFORM worq.wake(q);
    RETURN n;
  END IF;
  WITH s AS (
    SELECT worq.now_ms() AS now,
      coalesce((SELECT qs.listing FROM worq.queues qs WHERE qs.name = q), true) AS listing,
      coalesce((SELECT qs.events FROM worq.queues qs WHERE qs.name = q), true) AS events,
      NOT coalesce((SELECT qs.paused FROM worq.queues qs WHERE qs.name = q), false)
        AND NOT EXISTS (SELECT 1 FROM worq.limits l WHERE l.queue = q)
        AND NOT EXISTS (SELECT 1 FROM worq.tasks t WHERE t.queue = q AND t.state = 'enqueued')
        AS hand
  ), x AS (
    SELECT * FROM ROWS FROM (json_to_recordset(batch) AS (i text, n text, p text, o text,
      g boolean, r bigint, h bigint, a integer, b text, u bigint, t bigint, y integer, m text,
      c text)) WITH ORDINALITY AS x
  ), taken AS (
    -- One park per batch: the tasks a second parked worker could have taken join the line and
    -- wake it.
    DELETE FROM worq.parks p
    WHERE p.queue = q AND p.worker = (
      SELECT pk.worker FROM worq.parks pk, s
      WHERE s.hand AND pk.queue = q AND pk.until > s.now
        AND EXISTS (SELECT 1 FROM pg_stat_get_activity(pk.pid))
      LIMIT 1 FOR UPDATE OF pk SKIP LOCKED)
    RETURNING p.worker, p.origin, p.slots
  ), give AS (
    -- The first tasks due now, by priority, then in the batch's order: their places in it.
    SELECT tk.worker, tk.origin, array_agg(d.ordinality) AS ords FROM taken tk, LATERAL (
      SELECT x.ordinality FROM x, s WHERE NOT coalesce(x.u > s.now, false)
      ORDER BY coalesce(x.y, 0), x.ordinality LIMIT tk.slots) d
    GROUP BY tk.worker, tk.origin
  ), ins AS (
    INSERT INTO worq.tasks AS r (queue, id, name, state, payload, on_error, ignore_result,
      result_timeout, heartrate, attempts, backoff, run_at, timeout, priority, metadata, trace,
      created_at, listed, origin, enqueue_tag, due_at, ready_at, line_seq, token, lease_until,
      started_at, worker_id, attempt)
    SELECT q, x.i, x.n,
      CASE WHEN x.u > s.now THEN 'delayed' WHEN w.worker IS NOT NULL THEN 'processing'
        ELSE 'enqueued' END,
      x.p, coalesce(x.o, 'fail'), coalesce(x.g, false), x.r, x.h, x.a,
      coalesce(x.b::jsonb, enqueue_batch.backoff), coalesce(x.u, 0), coalesce(x.t, 0),
      coalesce(x.y, 0), coalesce(x.m, ''), coalesce(x.c, ''),
      s.now, s.listing, CASE WHEN x.g THEN NULL ELSE enqueue_batch.origin END, tag,
      CASE WHEN x.u > s.now THEN x.u END,
      CASE WHEN x.u > s.now THEN NULL ELSE s.now END, nextval('worq.line_seq'),
      CASE WHEN w.worker IS NOT NULL THEN w.worker || ':h' || nextval('worq.token_seq') END,
      CASE WHEN w.worker IS NOT NULL THEN s.now + worq.lease_ms(x.h) END,
      CASE WHEN w.worker IS NOT NULL THEN s.now END, w.worker,
      CASE WHEN w.worker IS NOT NULL THEN 1 ELSE 0 END
    FROM s, x LEFT JOIN LATERAL (
      SELECT gv.worker FROM give gv WHERE x.ordinality = ANY (gv.ords)) w ON true
    ORDER BY x.ordinality
    ON CONFLICT (queue, id) DO NOTHING
    RETURNING r
  ), logged AS (
    INSERT INTO worq.inbox (queue, body)
    SELECT q, CASE WHEN count(*) FILTER (WHERE (ins.r).worker_id IS NOT NULL) = 0
      THEN json_build_object('en', json_build_array(min((ins.r).created_at),
        to_json(array_agg((ins.r).id ORDER BY (ins.r).line_seq)),
        to_json(array_agg((ins.r).name ORDER BY (ins.r).line_seq))))
      ELSE json_build_object('es', (SELECT json_agg(e.v ORDER BY e.k, e.l) FROM (
          SELECT 0 AS k, (i.r).line_seq AS l, json_build_object('type', 'enqueued',
            'id', (i.r).id, 'name', (i.r).name, 'time', (i.r).created_at) AS v FROM ins i
          UNION ALL
          SELECT 1, (i.r).line_seq, json_build_object('type', 'started', 'id', (i.r).id,
            'name', (i.r).name, 'time', (i.r).started_at, 'attempt', 1,
            'workerId', (i.r).worker_id) FROM ins i WHERE (i.r).worker_id IS NOT NULL
        ) e)) END
    FROM ins HAVING count(*) > 0 AND (SELECT s.events FROM s)
  ), told AS (
    SELECT count(pg_notify('@schema@.o.' || gv.origin, json_build_object('h', json_build_array(q,
        gv.worker, CASE WHEN octet_length(h.rows::text) < 7800 THEN h.rows END))::text)) AS sent
    FROM give gv, LATERAL (
      SELECT json_agg(worq.reserved_row(i.r) ORDER BY (i.r).line_seq) AS rows
      FROM ins i WHERE (i.r).worker_id IS NOT NULL
    ) h WHERE h.rows IS NOT NULL
  )
  SELECT count(*)::integer, count(*) FILTER (WHERE (ins.r).worker_id IS NULL)::integer
    INTO n, rest
  FROM ins, (SELECT sent FROM told) t;
  IF rest > 0 THEN PERFORM worq.wake(q); END IF;
  RETURN n;
END $$;
