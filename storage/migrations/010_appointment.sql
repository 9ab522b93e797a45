-- O2: appointments (预约). Slots per service group with a capacity; appointments booked into
-- them with a short check-in code; check-in issues a ticket of priority 'appointment'.
-- Rules: hub/domain/appointment.py.

-- Hall settings: the check-in window around a slot's start, how far ahead slots open.
ALTER TABLE hall
    ADD COLUMN checkin_early_minutes integer NOT NULL DEFAULT 30
        CHECK (checkin_early_minutes BETWEEN 0 AND 240),
    ADD COLUMN checkin_late_minutes integer NOT NULL DEFAULT 15
        CHECK (checkin_late_minutes BETWEEN 0 AND 240),
    ADD COLUMN appointment_days integer NOT NULL DEFAULT 14
        CHECK (appointment_days BETWEEN 0 AND 90);

-- A group's slots, hall-local times. service_day NULL: a template, the same every working
-- day; a date: an explicit slot of that day only (a day with explicit slots ignores the
-- templates). Non-working days have no slots whatever is stored (hall_is_working_day()).
CREATE TABLE appointment_slot (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id     bigint NOT NULL REFERENCES service_group (id) ON DELETE CASCADE,
    service_day  date,
    slot_start   time NOT NULL,
    slot_end     time NOT NULL,
    capacity     integer NOT NULL CHECK (capacity BETWEEN 0 AND 1000),
    CHECK (slot_start < slot_end),
    UNIQUE NULLS NOT DISTINCT (group_id, service_day, slot_start)
);

CREATE TABLE appointment (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hall_id        bigint NOT NULL REFERENCES hall (id),
    group_id       bigint NOT NULL REFERENCES service_group (id),
    service_day    date NOT NULL,
    slot_start     time NOT NULL,
    slot_end       time NOT NULL,
    -- Typed at the kiosk to check in: unique per hall and day (cancelled ones included).
    code           text NOT NULL CHECK (code ~ '^[0-9]{6}$'),
    -- Q4: the document as a keyed HMAC and masked forms only, as on tickets.
    id_kind        text NOT NULL,
    id_key         text NOT NULL,
    id_masked      text NOT NULL,
    name_masked    text,
    phone          text CHECK (phone ~ '^1[3-9][0-9]{9}$'),
    status         text NOT NULL DEFAULT 'booked'
                   CHECK (status IN ('booked', 'cancelled', 'checked_in', 'no_show')),
    ticket_id      bigint REFERENCES ticket (id),
    created_at     timestamptz NOT NULL,
    checked_in_at  timestamptz,
    cancelled_at   timestamptz,
    CHECK ((status = 'checked_in') = (checked_in_at IS NOT NULL AND ticket_id IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    UNIQUE (hall_id, service_day, code)
);
-- One active appointment per document, group and day.
CREATE UNIQUE INDEX appointment_document_idx ON appointment (group_id, service_day, id_key)
    WHERE status IN ('booked', 'checked_in');
-- Seats taken per slot (capacity), and a day's list.
CREATE INDEX appointment_slot_idx ON appointment (group_id, service_day, slot_start)
    WHERE status <> 'cancelled';
CREATE INDEX appointment_hall_day_idx ON appointment (hall_id, service_day);
-- The no-show job and the reminders scan booked appointments by day.
CREATE INDEX appointment_booked_idx ON appointment (service_day) WHERE status = 'booked';
-- No-shows of one document (booking limit).
CREATE INDEX appointment_no_show_idx ON appointment (hall_id, id_key, service_day)
    WHERE status = 'no_show';
