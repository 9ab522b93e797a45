-- Q5: scrolling notices on a hall's display. A notice is shown until expires_at (NULL: until
-- removed); the row is written in the transaction of its audit row and of the
-- ``notice_posted`` event on ``hall:<hall_id>``.
CREATE TABLE notice (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hall_id     bigint NOT NULL REFERENCES hall (id),
    text        text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 500),
    created_by  bigint REFERENCES staff (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX notice_hall_idx ON notice (hall_id, created_at DESC);
