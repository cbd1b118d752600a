-- 0001: users, groups, desired memberships and the audit trail.
-- One statement per ";"-terminated chunk. Datetimes are ISO-8601 UTC text with microseconds (fixed
-- width, so they sort as text); JSON is TEXT; *_folded columns hold casefold_key() of the SCIM value,
-- because SQLite's NOCASE folds ASCII only.

CREATE TABLE scim_users (
    seq              INTEGER PRIMARY KEY,
    scim_id          TEXT    NOT NULL UNIQUE,
    user_name        TEXT    NOT NULL,
    user_name_folded TEXT    NOT NULL UNIQUE,
    sonar_login      TEXT    NOT NULL UNIQUE,
    sonar_id         TEXT    UNIQUE,
    external_id      TEXT,
    active           INTEGER NOT NULL CHECK (active IN (0, 1)),
    attributes       TEXT    NOT NULL,
    created          TEXT    NOT NULL,
    last_modified    TEXT    NOT NULL,
    version          INTEGER NOT NULL
);

CREATE INDEX scim_users_external_id ON scim_users (external_id);

CREATE INDEX scim_users_created ON scim_users (created, seq);

CREATE TABLE scim_groups (
    seq                 INTEGER PRIMARY KEY,
    scim_id             TEXT    NOT NULL UNIQUE,
    display_name        TEXT    NOT NULL,
    display_name_folded TEXT    NOT NULL UNIQUE,
    sonar_name          TEXT    NOT NULL UNIQUE,
    sonar_id            TEXT    UNIQUE,
    external_id         TEXT,
    attributes          TEXT    NOT NULL,
    created             TEXT    NOT NULL,
    last_modified       TEXT    NOT NULL,
    version             INTEGER NOT NULL
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
    seq           INTEGER PRIMARY KEY,
    at            TEXT NOT NULL,
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
