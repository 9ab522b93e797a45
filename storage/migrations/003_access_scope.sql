-- H5: a staff member belongs to a hall (hall managers manage their hall's staff), else to a
-- department, else to a region (region-level admins and supervisors); at least one is set.
ALTER TABLE staff
    ADD COLUMN hall_id bigint REFERENCES hall (id),
    ADD COLUMN region_id bigint REFERENCES region (id);
CREATE INDEX staff_hall_idx ON staff (hall_id);

-- S10: each audit row records where its target lives, so that a scoped reader (a city
-- supervisor, a hall manager) sees exactly the rows of its scope. region_path is the
-- target's region path ("/1/4/9/"), matched by prefix like region.path.
ALTER TABLE audit_log
    ADD COLUMN region_path text,
    ADD COLUMN hall_id bigint,
    ADD COLUMN department_id bigint;
CREATE INDEX audit_log_region_path_idx ON audit_log (region_path text_pattern_ops);
CREATE INDEX audit_log_hall_idx ON audit_log (hall_id, at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);

-- Sessions of one staff member (sign-out everywhere, expiry sweeps).
CREATE INDEX staff_session_staff_idx ON staff_session (staff_id);
