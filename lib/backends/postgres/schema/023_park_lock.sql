-- Schema version 19: a park's listening connection is known alive by a lock, not by
-- pg_stat_get_activity. A lone call's enqueue that found a worker parked asked
-- pg_stat_get_activity(pid) whether the park's listening connection was still there: its first call
-- in a transaction copies the status slot of every server process (a snapshot kept until the
-- transaction ends): pgbench, one client, max_connections 100, 0.057–0.082 ms a statement against
-- 0.022–0.024 for the lock's test below (0.024 for SELECT 1); in lone calls, enqueue_batch's own
-- time 0.93× (docs/postgres.md, "Speed"). Each listening connection now holds a session advisory
-- lock on (hashtext('<schema>.listen'), its pid) from before it listens
-- (lib/backends/postgres/listen.ts), and an enqueue takes a park only when that lock cannot be had:
-- pg_try_advisory_xact_lock_shared fails while the connection lives (4 µs) and succeeds once it is
-- gone (the lock goes with its session; the shared lock the enqueue then holds ends with its
-- transaction). A pid reused by another server process holds no such lock, so its park is not taken
-- either. A process of an earlier version does not take the lock: its parks are passed over, and
-- its workers are woken for the work as when nobody is parked. enqueue_batch is that of version 14
-- otherwise.
CREATE OR REPLACE FUNCTION worq.enqueue_batch(q text, batch json, origin text, tag text,
  backoff jsonb, fresh boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
  rest integer;
  -- The lone call's (below): none of these names is a column or alias of the statements.
  at_ms bigint;
  one record;
  one_q worq.queues;
  park worq.parks;
  handed worq.tasks;
  handed_rows json;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM worq.parks p WHERE p.queue = q) THEN
    IF fresh THEN
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
        RETURNING r.id, r.name, r.created_at, r.line_seq
      ), logged AS (
        INSERT INTO worq.inbox (queue, body)
        SELECT q, json_build_object('en', json_build_array(min(ins.created_at),
          to_json(array_agg(ins.id ORDER BY ins.line_seq)),
          to_json(array_agg(ins.name ORDER BY ins.line_seq))))
        FROM ins HAVING count(*) > 0 AND (SELECT s.events FROM s)
      )
      SELECT count(*)::integer INTO n FROM ins;
    ELSE
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
    END IF;
    PERFORM worq.wake(q);
    RETURN n;
  END IF;
  -- A lone call with a worker parked (version 14): the handover below in a few plain statements,
  -- with the same rules and the same writes. The batch statement's start-up (its plan's many
  -- nodes, made ready at every call) cost a lone enqueue about as much as its work. Anything
  -- else (a delayed task, a paused or limited queue, a line not empty, no live park) takes the
  -- batch statement, which decides it as before.
  IF json_array_length(batch) = 1 THEN
    at_ms := worq.now_ms();
    SELECT * INTO one FROM json_to_record(batch->0) AS one(i text, n text, p text, o text,
      g boolean, r bigint, h bigint, a integer, b text, u bigint, t bigint, y integer, m text,
      c text);
    SELECT * INTO one_q FROM worq.queues qs WHERE qs.name = q;
    IF NOT coalesce(one.u > at_ms, false) AND NOT coalesce(one_q.paused, false)
        AND NOT EXISTS (SELECT 1 FROM worq.limits l WHERE l.queue = q)
        AND NOT EXISTS (SELECT 1 FROM worq.tasks t WHERE t.queue = q AND t.state = 'enqueued') THEN
      DELETE FROM worq.parks p
      WHERE p.queue = q AND p.worker = (
        SELECT pk.worker FROM worq.parks pk
        WHERE pk.queue = q AND pk.until > at_ms
          AND NOT pg_try_advisory_xact_lock_shared(hashtext('@schema@.listen'), pk.pid)
        LIMIT 1 FOR UPDATE OF pk SKIP LOCKED)
      RETURNING p.* INTO park;
      IF FOUND THEN
        INSERT INTO worq.tasks AS t (queue, id, name, state, payload, on_error, ignore_result,
          result_timeout, heartrate, attempts, backoff, run_at, timeout, priority, metadata, trace,
          created_at, listed, origin, enqueue_tag, due_at, ready_at, line_seq, token,
          lease_until, started_at, worker_id, attempt)
        VALUES (q, one.i, one.n, 'processing', one.p, coalesce(one.o, 'fail'),
          coalesce(one.g, false), one.r, one.h, one.a,
          coalesce(one.b::jsonb, enqueue_batch.backoff), coalesce(one.u, 0), coalesce(one.t, 0),
          coalesce(one.y, 0), coalesce(one.m, ''), coalesce(one.c, ''), at_ms,
          coalesce(one_q.listing, true), CASE WHEN one.g THEN NULL ELSE enqueue_batch.origin END,
          tag, NULL, at_ms, nextval('worq.line_seq'),
          park.worker || ':h' || nextval('worq.token_seq'), at_ms + worq.lease_ms(one.h), at_ms,
          park.worker, 1)
        ON CONFLICT (queue, id) DO NOTHING
        RETURNING t.* INTO handed;
        -- An id already taken: nothing written, nobody told (as the batch statement does); the
        -- caller sends the call again through enqueue().
        IF NOT FOUND THEN RETURN 0; END IF;
        IF coalesce(one_q.events, true) THEN
          INSERT INTO worq.inbox (queue, body) VALUES (q, json_build_object('es',
            json_build_array(
              json_build_object('type', 'enqueued', 'id', handed.id, 'name', handed.name,
                'time', handed.created_at),
              json_build_object('type', 'started', 'id', handed.id, 'name', handed.name,
                'time', handed.started_at, 'attempt', 1, 'workerId', handed.worker_id))));
        END IF;
        handed_rows := json_build_array(worq.reserved_row(handed));
        PERFORM pg_notify('@schema@.o.' || park.origin, json_build_object('h',
          json_build_array(q, park.worker,
            CASE WHEN octet_length(handed_rows::text) < 7800 THEN handed_rows END))::text);
        RETURN 1;
      END IF;
    END IF;
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
        AND NOT pg_try_advisory_xact_lock_shared(hashtext('@schema@.listen'), pk.pid)
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
