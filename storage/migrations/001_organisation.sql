-- H5: organisation model. Regions form a tree (province → city → county → township);
-- `path` is the materialised chain of ids ("/1/4/9/") so that "every hall of a city" is a
-- prefix match that PostgreSQL can index.
CREATE TABLE region (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id  bigint REFERENCES region (id),
    level      text NOT NULL CHECK (level IN ('province', 'city', 'county', 'township')),
    code       text NOT NULL UNIQUE,
    name       text NOT NULL,
    path       text NOT NULL
);
CREATE INDEX region_path_idx ON region (path text_pattern_ops);

CREATE TABLE department (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region_id  bigint NOT NULL REFERENCES region (id),
    code       text NOT NULL UNIQUE,
    name       text NOT NULL
);

CREATE TABLE hall (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region_id  bigint NOT NULL REFERENCES region (id),
    code       text NOT NULL UNIQUE,
    name       text NOT NULL,
    timezone   text NOT NULL DEFAULT 'Asia/Shanghai'
);

CREATE TABLE "window" (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hall_id        bigint NOT NULL REFERENCES hall (id),
    number         integer NOT NULL CHECK (number > 0),
    name           text NOT NULL DEFAULT '',
    department_id  bigint REFERENCES department (id),
    UNIQUE (hall_id, number)
);

CREATE TABLE staff (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_no       text NOT NULL UNIQUE,
    name           text NOT NULL,
    department_id  bigint REFERENCES department (id),
    password_hash  text NOT NULL,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- A role always comes with a scope: a hall, a department or a region (H5).
CREATE TABLE role_grant (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id    bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('admin', 'hall_manager', 'window_staff', 'supervisor')),
    scope_kind  text NOT NULL CHECK (scope_kind IN ('hall', 'department', 'region')),
    scope_id    bigint NOT NULL,
    UNIQUE (staff_id, role, scope_kind, scope_id)
);

-- Session tokens are random; only their SHA-256 is stored.
CREATE TABLE staff_session (
    token_hash  bytea PRIMARY KEY,
    staff_id    bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

-- D6: every device has an identity and a token (SHA-256 of a random 256-bit value).
CREATE TABLE device (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hall_id     bigint NOT NULL REFERENCES hall (id),
    kind        text NOT NULL,
    name        text NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    model       text NOT NULL DEFAULT '',
    firmware    text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX device_hall_idx ON device (hall_id);

-- S10: every staff action. Written in the same transaction as the change it records.
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor_id     bigint REFERENCES staff (id),
    actor_label  text NOT NULL,
    role         text NOT NULL,
    scope_kind   text NOT NULL,
    scope_id     bigint,
    action       text NOT NULL,
    target_kind  text NOT NULL,
    target_id    text NOT NULL,
    before       jsonb,
    after        jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
CREATE INDEX audit_log_target_idx ON audit_log (target_kind, target_id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at DESC);
