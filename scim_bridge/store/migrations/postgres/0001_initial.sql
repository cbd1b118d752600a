-- 0001: users, groups, desired memberships and the audit trail: the SQLite schema after its migration 0002
-- (incl. users.settled), in PostgreSQL's own types. Run as one script inside one transaction.
-- Datetimes are TIMESTAMPTZ (microseconds, like the SQLite text); attributes are `json`, not `jsonb`,
-- because `json` keeps the text as written: key order and all, which the store promises to return.
-- *_folded columns hold casefold_key() of the SCIM value: Python's Unicode casefold, not the server's
-- collation, decides what collides, the same on every backend.

CREATE TABLE scim_users (
    seq              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scim_id          TEXT    NOT NULL,
    user_name        TEXT    NOT NULL,
    user_name_folded TEXT    NOT NULL,
    sonar_login      TEXT    NOT NULL,
    sonar_id         TEXT,
    external_id      TEXT,
    active           BOOLEAN NOT NULL,
    settled          BOOLEAN NOT NULL DEFAULT TRUE,
    attributes       JSON    NOT NULL,
    created          TIMESTAMPTZ NOT NULL,
    last_modified    TIMESTAMPTZ NOT NULL,
    version          BIGINT  NOT NULL,
    -- Named, because the store maps a violated constraint's name to the record field it reports.
    CONSTRAINT scim_users_scim_id_key UNIQUE (scim_id),
    CONSTRAINT scim_users_user_name_folded_key UNIQUE (user_name_folded),
    CONSTRAINT scim_users_sonar_login_key UNIQUE (sonar_login),
    CONSTRAINT scim_users_sonar_id_key UNIQUE (sonar_id)
);

CREATE INDEX scim_users_external_id ON scim_users (external_id);

CREATE INDEX scim_users_created ON scim_users (created, seq);

CREATE TABLE scim_groups (
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scim_id             TEXT   NOT NULL,
    display_name        TEXT   NOT NULL,
    display_name_folded TEXT   NOT NULL,
    sonar_name          TEXT   NOT NULL,
    sonar_id            TEXT,
    external_id         TEXT,
    attributes          JSON   NOT NULL,
    created             TIMESTAMPTZ NOT NULL,
    last_modified       TIMESTAMPTZ NOT NULL,
    version             BIGINT NOT NULL,
    CONSTRAINT scim_groups_scim_id_key UNIQUE (scim_id),
    CONSTRAINT scim_groups_display_name_folded_key UNIQUE (display_name_folded),
    CONSTRAINT scim_groups_sonar_name_key UNIQUE (sonar_name),
    CONSTRAINT scim_groups_sonar_id_key UNIQUE (sonar_id)
);

CREATE INDEX scim_groups_external_id ON scim_groups (external_id);

CREATE INDEX scim_groups_created ON scim_groups (created, seq);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (scim_id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES scim_users (scim_id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

CREATE INDEX group_members_user_id ON group_members (user_id);

CREATE TABLE audit_events (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            TIMESTAMPTZ NOT NULL,
    request_id    TEXT,
    actor         TEXT,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL CHECK (resource_type IN ('User', 'Group')),
    scim_id       TEXT NOT NULL,
    sonar_key     TEXT,
    outcome       TEXT NOT NULL,
    detail        TEXT
);

CREATE INDEX audit_events_at ON audit_events (at, seq);

CREATE INDEX audit_events_scim_id ON audit_events (scim_id, at, seq);
