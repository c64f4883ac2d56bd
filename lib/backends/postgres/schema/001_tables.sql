-- worq on PostgreSQL, schema version 1: the tables. Every name below is qualified with the schema
-- `worq.`, which migrate.ts replaces with the URL's `?schema=`. docs/postgres.md lists each table.

-- One row per queue: its settings, the sweep's guard, and the row every locking operation of the
-- queue takes (FOR UPDATE), so a queue's finishes, reserves and sweeps run one at a time.
CREATE TABLE worq.queues (
  name text PRIMARY KEY,
  paused boolean NOT NULL DEFAULT false,
  events boolean NOT NULL DEFAULT true,
  events_max integer NOT NULL DEFAULT 10000,
  metrics boolean NOT NULL DEFAULT true,
  listing boolean NOT NULL DEFAULT true,
  cache_size integer NOT NULL DEFAULT 10000,
  cache_ttl bigint NOT NULL DEFAULT 3600000,
  last_sweep bigint NOT NULL DEFAULT 0,
  swept_at bigint,
  event_seq bigint NOT NULL DEFAULT 0
);

-- Order in a wait line (a push takes nextval, a push to the front -nextval) and fencing tokens.
CREATE SEQUENCE worq.line_seq;
CREATE SEQUENCE worq.token_seq;

-- One row per task, live or finished (until expires_at). state: pending (waits for arguments or a
-- cache leader), enqueued (in the wait line), delayed (until due_at), held (waits for a slot of
-- limit held_by), processing (leased until lease_until under token), done (outcome kept).
-- enqueue_tag: the enqueue call that wrote the row, so that the same call sent again (its reply
-- lost to a dropped connection) recognises its own task instead of answering `duplicate`.
CREATE TABLE worq.tasks (
  queue text NOT NULL,
  id text NOT NULL,
  name text NOT NULL,
  state text NOT NULL,
  payload text NOT NULL,
  deps jsonb NOT NULL DEFAULT '[]',
  on_error text NOT NULL,
  ignore_result boolean NOT NULL,
  result_timeout bigint NOT NULL,
  heartrate bigint NOT NULL,
  attempts integer NOT NULL,
  backoff jsonb NOT NULL,
  run_at bigint NOT NULL DEFAULT 0,
  timeout bigint NOT NULL DEFAULT 0,
  priority integer NOT NULL DEFAULT 0,
  metadata text NOT NULL DEFAULT '',
  cache jsonb,
  trace text NOT NULL DEFAULT '',
  attempt integer NOT NULL DEFAULT 0,
  token text,
  lease_until bigint,
  due_at bigint,
  held_by text,
  slots text[] NOT NULL DEFAULT '{}',
  missing integer NOT NULL DEFAULT 0,
  outcome text,
  expires_at bigint,
  ready_at bigint,
  created_at bigint NOT NULL,
  started_at bigint,
  finished_at bigint,
  worker_id text,
  progress text,
  finish_tag text,
  cached boolean NOT NULL DEFAULT false,
  cache_key text,
  holds text[],
  listed boolean NOT NULL DEFAULT true,
  origin text,
  enqueue_tag text,
  line_seq bigint,
  created_seq bigint NOT NULL DEFAULT nextval('worq.line_seq'),
  PRIMARY KEY (queue, id)
);
CREATE INDEX tasks_line ON worq.tasks (queue, priority, line_seq) WHERE state = 'enqueued';
CREATE INDEX tasks_delayed ON worq.tasks (queue, due_at) WHERE state = 'delayed';
CREATE INDEX tasks_processing ON worq.tasks (queue, lease_until) WHERE state = 'processing';
CREATE INDEX tasks_held ON worq.tasks (queue, held_by, priority, line_seq) WHERE state = 'held';
CREATE INDEX tasks_pending ON worq.tasks (queue) WHERE state = 'pending';
CREATE INDEX tasks_expiry ON worq.tasks (queue, expires_at) WHERE state = 'done';
CREATE INDEX tasks_listed ON worq.tasks (queue, created_seq DESC) WHERE listed;

-- Dependents waiting for a task (queue, id): an argument slot (slot >= 0) of task (dq, did), or a
-- cache follower (slot -1), in registration order (seq).
CREATE TABLE worq.deps (
  queue text NOT NULL,
  id text NOT NULL,
  seq bigserial,
  dq text NOT NULL,
  did text NOT NULL,
  slot integer NOT NULL,
  PRIMARY KEY (queue, id, seq)
);

-- The result cache (used: least recently used first) and its single flights (the live task that
-- computes a key).
CREATE TABLE worq.cache (
  queue text NOT NULL,
  key text NOT NULL,
  outcome text NOT NULL,
  expires_at bigint NOT NULL,
  used bigint NOT NULL,
  PRIMARY KEY (queue, key)
);
CREATE INDEX cache_used ON worq.cache (queue, used);
CREATE TABLE worq.flights (
  queue text NOT NULL,
  key text NOT NULL,
  id text NOT NULL,
  PRIMARY KEY (queue, key)
);

-- Limits, the tasks holding a concurrency slot of each, and the starts in a rate window.
CREATE TABLE worq.limits (
  queue text NOT NULL,
  name text NOT NULL,
  spec jsonb NOT NULL,
  PRIMARY KEY (queue, name)
);
CREATE TABLE worq.holders (
  queue text NOT NULL,
  name text NOT NULL,
  id text NOT NULL,
  PRIMARY KEY (queue, name, id)
);
CREATE TABLE worq.starts (
  queue text NOT NULL,
  name text NOT NULL,
  t bigint NOT NULL
);
CREATE INDEX starts_window ON worq.starts (queue, name, t);

-- Live workers until `until`.
CREATE TABLE worq.workers (
  queue text NOT NULL,
  id text NOT NULL,
  info jsonb NOT NULL,
  until bigint NOT NULL,
  PRIMARY KEY (queue, id)
);

CREATE TABLE worq.schedules (
  queue text NOT NULL,
  id text NOT NULL,
  body jsonb NOT NULL,
  PRIMARY KEY (queue, id)
);

-- What happened, before it is numbered: any operation appends here without the queue's lock (an
-- enqueue in the caller's transaction, a cascade into another queue); the queue's next locking
-- operation moves the rows into events (numbered 1, 2, … per queue) and metrics.
CREATE TABLE worq.inbox (
  seq bigserial PRIMARY KEY,
  queue text NOT NULL,
  body jsonb NOT NULL
);
CREATE INDEX inbox_queue ON worq.inbox (queue, seq);
CREATE TABLE worq.events (
  queue text NOT NULL,
  n bigint NOT NULL,
  body jsonb NOT NULL,
  PRIMARY KEY (queue, n)
);

-- Per-minute counts (minute 0: the totals since metrics began).
CREATE TABLE worq.metrics (
  queue text NOT NULL,
  minute bigint NOT NULL,
  completed bigint NOT NULL DEFAULT 0,
  failed bigint NOT NULL DEFAULT 0,
  retried bigint NOT NULL DEFAULT 0,
  expired bigint NOT NULL DEFAULT 0,
  cancelled bigint NOT NULL DEFAULT 0,
  wait bigint[] NOT NULL DEFAULT array_fill(0::bigint, ARRAY[22]),
  run bigint[] NOT NULL DEFAULT array_fill(0::bigint, ARRAY[22]),
  wait_sum bigint NOT NULL DEFAULT 0,
  run_sum bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (queue, minute)
);
