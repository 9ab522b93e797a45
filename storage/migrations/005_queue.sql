-- Q1–Q3, Q6: service groups, windows' groups and state, tickets and their daily counters.

-- Hall settings of the queue: ticket issuing hours in hall-local minutes of the day
-- (0..1440, so that a 24-hour hall is 0..1440), per-document ticket limit per day, and how
-- often a skipped ticket is re-queued.
ALTER TABLE hall
    ADD COLUMN opens_minute integer NOT NULL DEFAULT 540 CHECK (opens_minute BETWEEN 0 AND 1439),
    ADD COLUMN closes_minute integer NOT NULL DEFAULT 1020 CHECK (closes_minute BETWEEN 1 AND 1440),
    ADD COLUMN id_daily_limit integer NOT NULL DEFAULT 3 CHECK (id_daily_limit > 0),
    ADD COLUMN requeue_limit integer NOT NULL DEFAULT 1 CHECK (requeue_limit >= 0);

-- Q6 honours (not supervision cards): shown on window displays.
ALTER TABLE "window" ADD COLUMN red_flag boolean NOT NULL DEFAULT false;
ALTER TABLE staff ADD COLUMN star_staff boolean NOT NULL DEFAULT false;

-- A queue with its own ticket prefix (A, B, …) in one hall.
CREATE TABLE service_group (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hall_id          bigint NOT NULL REFERENCES hall (id),
    prefix           text NOT NULL CHECK (prefix ~ '^[A-Z]{1,2}$'),
    name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    active           boolean NOT NULL DEFAULT true,
    daily_quota      integer CHECK (daily_quota > 0),          -- tickets per day, NULL: no cap
    id_daily_limit   integer NOT NULL DEFAULT 1 CHECK (id_daily_limit > 0),  -- per document
    service_seconds  integer NOT NULL DEFAULT 300 CHECK (service_seconds > 0), -- prior estimate
    UNIQUE (hall_id, prefix)
);

-- Which groups a window serves, in its order of preference (rank 1 = main group).
CREATE TABLE window_group (
    window_id  bigint NOT NULL REFERENCES "window" (id) ON DELETE CASCADE,
    group_id   bigint NOT NULL REFERENCES service_group (id) ON DELETE CASCADE,
    rank       integer NOT NULL DEFAULT 1 CHECK (rank BETWEEN 1 AND 9),
    PRIMARY KEY (window_id, group_id)
);
CREATE INDEX window_group_group_idx ON window_group (group_id);

-- The daily sequence per group: one row per (group, hall-local day); the upsert that takes a
-- number holds the row until commit, so numbers are never duplicated, and a rollback
-- returns its number, so none is skipped.
CREATE TABLE ticket_counter (
    group_id     bigint NOT NULL REFERENCES service_group (id) ON DELETE CASCADE,
    service_day  date NOT NULL,
    last         integer NOT NULL,
    PRIMARY KEY (group_id, service_day)
);

CREATE TABLE ticket (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hall_id           bigint NOT NULL REFERENCES hall (id),
    group_id          bigint NOT NULL REFERENCES service_group (id),
    service_day       date NOT NULL,
    seq               integer NOT NULL,
    number            text NOT NULL,
    public_token      text NOT NULL UNIQUE,
    source            text NOT NULL CHECK (source IN
                        ('ticket_machine', 'kiosk', 'id_card', 'appointment', 'online', 'staff')),
    priority          text NOT NULL DEFAULT 'normal' CHECK (priority IN
                        ('normal', 'appointment', 'green_channel', 'vip')),
    status            text NOT NULL DEFAULT 'waiting' CHECK (status IN
                        ('waiting', 'called', 'held', 'done', 'no_show', 'expired')),
    issued_at         timestamptz NOT NULL,
    queued_at         timestamptz NOT NULL,     -- the position key (see hub/domain/queue.py)
    target_window_id  bigint REFERENCES "window" (id),   -- transferred to one window only
    window_id         bigint REFERENCES "window" (id),   -- where it was last called
    staff_id          bigint REFERENCES staff (id),      -- who called it last
    called_at         timestamptz,
    finished_at       timestamptz,
    call_count        integer NOT NULL DEFAULT 0,
    skip_count        integer NOT NULL DEFAULT 0,
    -- Q4: the identity document, as a keyed HMAC (limits, lookups) and masked forms only.
    id_kind           text,
    id_key            text,
    id_masked         text,
    name_masked       text,
    phone             text,
    device_id         bigint REFERENCES device (id),
    UNIQUE (group_id, service_day, seq),
    UNIQUE (hall_id, service_day, number)
);
-- The waiting queue of a hall's day, by group (call next, waiting counts).
CREATE INDEX ticket_waiting_idx ON ticket (hall_id, service_day, group_id, queued_at)
    WHERE status = 'waiting';
CREATE INDEX ticket_window_idx ON ticket (window_id) WHERE status IN ('called', 'held');
CREATE INDEX ticket_id_key_idx ON ticket (hall_id, service_day, id_key) WHERE id_key IS NOT NULL;
CREATE INDEX ticket_finished_idx ON ticket (hall_id, finished_at) WHERE status = 'done';

-- Q2: who works a window now and what it serves. One row per window, created on first use.
CREATE TABLE window_state (
    window_id          bigint PRIMARY KEY REFERENCES "window" (id) ON DELETE CASCADE,
    hall_id            bigint NOT NULL REFERENCES hall (id),
    status             text NOT NULL DEFAULT 'closed' CHECK (status IN ('closed', 'open', 'paused')),
    staff_id           bigint REFERENCES staff (id),
    current_ticket_id  bigint REFERENCES ticket (id),
    changed_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'closed') = (staff_id IS NULL))
);
-- A staff member works at one window at a time.
CREATE UNIQUE INDEX window_state_staff_idx ON window_state (staff_id) WHERE staff_id IS NOT NULL;
