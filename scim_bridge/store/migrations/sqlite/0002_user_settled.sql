-- 0002: whether SonarQube has reached what a user's record asks for (its active state, SAML link and, when
-- active, the memberships the store remembers). A change is written first with settled = 0, then SonarQube
-- is changed, then settled = 1: a request that died in between leaves a record the next request completes.
ALTER TABLE scim_users ADD COLUMN settled INTEGER NOT NULL DEFAULT 1 CHECK (settled IN (0, 1));
