-- H3: PostgreSQL owns each topic's epoch, gap-free sequence and history.
-- A writer takes the next number with UPDATE … RETURNING on the topic row inside its own
-- transaction; the row lock serialises writers of one topic, so commit order and sequence
-- order agree, and every seq below a committed one is itself committed.
CREATE TABLE topic (
    name       text PRIMARY KEY,
    epoch      bigint NOT NULL,
    seq        bigint NOT NULL DEFAULT 0,
    kept_from  bigint NOT NULL DEFAULT 1   -- lowest seq still in topic_event
);

-- The outbox, which is also the topic's history: the frame is encoded once, at write time,
-- and replayed byte for byte.
CREATE TABLE topic_event (
    topic  text NOT NULL REFERENCES topic (name) ON DELETE CASCADE,
    seq    bigint NOT NULL,
    type   text NOT NULL,
    at     timestamptz NOT NULL DEFAULT now(),
    frame  bytea NOT NULL,
    PRIMARY KEY (topic, seq)
);

-- Each serving process holds a lease; peers of a process whose lease ran out are offline.
CREATE TABLE hub_process (
    id            uuid PRIMARY KEY,
    host          text NOT NULL,
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    lease_until   timestamptz NOT NULL
);

-- H2: presence of devices and screens.
CREATE TABLE peer_presence (
    peer_id     text PRIMARY KEY,
    peer_kind   text NOT NULL,
    hall_id     bigint NOT NULL REFERENCES hall (id),
    label       text NOT NULL DEFAULT '',
    online      boolean NOT NULL,
    process_id  uuid,
    conn_id     uuid,                      -- the connection that set it online
    last_seen   timestamptz NOT NULL,
    changed_at  timestamptz NOT NULL
);
CREATE INDEX peer_presence_hall_idx ON peer_presence (hall_id);
CREATE INDEX peer_presence_process_idx ON peer_presence (process_id) WHERE online;

-- Idempotency keys of device events already accepted (D6), so a re-sent event is not repeated.
CREATE TABLE peer_event_key (
    peer_id  text NOT NULL,
    key      text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (peer_id, key)
);

-- Periodic jobs: who ran each last, and how often (hub/services/jobs.py).
CREATE TABLE job_state (
    job          text PRIMARY KEY,
    process_id   text NOT NULL,
    last_run_at  timestamptz NOT NULL,
    runs         bigint NOT NULL
);
