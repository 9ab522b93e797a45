-- O9: ratings (好差评). One rating per served ticket, linked to the window and the staff member
-- who served it (copied from the ticket when the rating is made). A bad grade names its
-- reasons (codes of hub/domain/rating.py) and later opens a rectification case (case_id).
CREATE TABLE rating (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id   bigint NOT NULL UNIQUE REFERENCES ticket (id),
    hall_id     bigint NOT NULL REFERENCES hall (id),
    window_id   bigint REFERENCES "window" (id),
    staff_id    bigint REFERENCES staff (id),
    grade       text NOT NULL CHECK (grade IN ('very_satisfied', 'satisfied',
                    'basically_satisfied', 'dissatisfied', 'very_dissatisfied')),
    reasons     text[] NOT NULL DEFAULT '{}' CHECK (reasons <@ ARRAY['poor_attitude',
                    'slow_service', 'complex_process', 'unreasonable_materials',
                    'repeated_visits', 'unclear_policy', 'other']::text[]),
    comment     text CHECK (char_length(comment) BETWEEN 1 AND 500),
    source      text NOT NULL CHECK (source IN ('evaluator', 'kiosk', 'sms', 'web')),
    device_id   bigint REFERENCES device (id),        -- the evaluator or kiosk, if one
    created_at  timestamptz NOT NULL,
    case_id     bigint,                                -- the rectification case (later)
    -- A bad grade has reasons, a good one none.
    CHECK ((grade IN ('dissatisfied', 'very_dissatisfied')) = (cardinality(reasons) > 0))
);
CREATE INDEX rating_hall_idx ON rating (hall_id, created_at);
CREATE INDEX rating_staff_idx ON rating (staff_id, created_at) WHERE staff_id IS NOT NULL;
CREATE INDEX rating_window_idx ON rating (window_id, created_at) WHERE window_id IS NOT NULL;
