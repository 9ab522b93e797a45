-- Issue 5 (D1-D6, O3, O9): hall devices as peers. docs/devices/hub.md.

-- Where a device is used and what it last reported.
--   host_id    a printer, id_reader or code_reader belongs to the kiosk, ticket machine or info
--              terminal whose page uses it (hub/services/devices.py checks kinds and hall).
--   window_id  an evaluator, window_display, id_reader or scanner stands at a window.
--   config     D6 remote settings, pushed to the device as `configure` (and in its snapshot).
--   state      the last status it reported (printer paper/cover/error, link to the hardware,
--              parts), merged key by key; state_at is when.
--   errors     failures counted for the device page (print_failed …).
ALTER TABLE device
    ADD COLUMN host_id    bigint REFERENCES device (id),
    ADD COLUMN window_id  bigint REFERENCES "window" (id),
    ADD COLUMN config     jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN state      jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN state_at   timestamptz,
    ADD COLUMN errors     integer NOT NULL DEFAULT 0 CHECK (errors >= 0),
    ADD CONSTRAINT device_not_own_host CHECK (host_id IS DISTINCT FROM id),
    ADD CONSTRAINT device_config_object CHECK (jsonb_typeof(config) = 'object'),
    ADD CONSTRAINT device_state_object CHECK (jsonb_typeof(state) = 'object');
-- The printers and readers of a host (every ticket a kiosk issues looks up its printers).
CREATE INDEX device_host_idx ON device (host_id) WHERE host_id IS NOT NULL;
-- The evaluator, reader and scanner of a window.
CREATE INDEX device_window_idx ON device (window_id) WHERE window_id IS NOT NULL;

-- Live alerts of a hall's devices (alerts:<hall>): one row per device and code while it lasts.
-- Raised and cleared only on change: the row's insert or delete is the change.
CREATE TABLE device_alert (
    device_id  bigint NOT NULL REFERENCES device (id),
    code       text NOT NULL CHECK (code IN ('paper_low', 'paper_out', 'cover_open',
                   'printer_error', 'device_unreachable', 'device_offline')),
    hall_id    bigint NOT NULL REFERENCES hall (id),
    level      text NOT NULL CHECK (level IN ('warning', 'critical')),
    message    text NOT NULL,
    since      timestamptz NOT NULL,
    PRIMARY KEY (device_id, code)
);
CREATE INDEX device_alert_hall_idx ON device_alert (hall_id, since);

-- D3: files a scanner (document camera) uploaded for the ticket being served at its window.
-- blob is the SHA-256 of the bytes in the blob store (hub/services/blobs.py).
CREATE TABLE ticket_attachment (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id     bigint NOT NULL REFERENCES ticket (id),
    blob          text NOT NULL CHECK (blob ~ '^[0-9a-f]{64}$'),
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png',
                      'application/pdf')),
    size          bigint NOT NULL CHECK (size > 0),
    device_id     bigint REFERENCES device (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_attachment_ticket_idx ON ticket_attachment (ticket_id);

-- O9: a rating prompt that got no grade (the pad timed out, nobody answered, the pad lost its
-- link). One per ticket; a ticket rated later keeps both rows (the rating wins in reports).
CREATE TABLE rating_unrated (
    ticket_id   bigint PRIMARY KEY REFERENCES ticket (id),
    hall_id     bigint NOT NULL REFERENCES hall (id),
    window_id   bigint REFERENCES "window" (id),
    staff_id    bigint REFERENCES staff (id),
    device_id   bigint REFERENCES device (id),
    reason      text NOT NULL CHECK (reason IN ('timed_out', 'no_answer', 'disconnected')),
    created_at  timestamptz NOT NULL
);
CREATE INDEX rating_unrated_hall_idx ON rating_unrated (hall_id, created_at);
