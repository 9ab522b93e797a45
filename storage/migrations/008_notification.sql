-- H6, Q8: the notification outbox. A row is written in the transaction of its cause (a ticket
-- near the front, an appointment to remind of); `key` is its idempotency key, one per cause,
-- and the key the SMS gateway deduplicates by. Due rows: `pending` or `sending` (a claim whose
-- lease ran out) with next_attempt_at reached; a claim sets next_attempt_at to the lease's end.
CREATE TABLE notification (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key              text NOT NULL UNIQUE CHECK (key ~ '^[A-Za-z0-9_.:-]{1,200}$'),
    channel          text NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms')),
    kind             text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,39}$'),
    hall_id          bigint REFERENCES hall (id),
    recipient        text NOT NULL CHECK (recipient ~ '^[+]?[0-9]{6,15}$'),
    body             text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 500),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    lease_until      timestamptz,
    expires_at       timestamptz,
    last_error       text,
    gateway_id       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    CHECK ((status IN ('pending', 'sending')) = (next_attempt_at IS NOT NULL)),
    CHECK ((status = 'sending') = (lease_until IS NOT NULL)),
    CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX notification_due_idx ON notification (next_attempt_at)
    WHERE status IN ('pending', 'sending');
CREATE INDEX notification_hall_idx ON notification (hall_id, created_at DESC);
