-- Local accounts. Applied by authenticator.migrate inside one transaction, after
-- classhub_auth and classhub_auth.schema_migrations exist; no BEGIN/COMMIT here.

CREATE TABLE classhub_auth.accounts (
    username            text PRIMARY KEY,
    password_hash       text NOT NULL,
    role                text NOT NULL DEFAULT 'student',
    disabled            boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz,
    password_changed_at timestamptz,
    CONSTRAINT accounts_role_check CHECK (role IN ('admin', 'teacher', 'student')),
    -- authenticator.usernames.normalize_username is the real rule; these only stop
    -- obviously broken rows written by hand
    CONSTRAINT accounts_username_check CHECK (
        username <> '' AND char_length(username) <= 128 AND username = btrim(username)
    ),
    CONSTRAINT accounts_password_hash_check CHECK (password_hash LIKE '$argon2%')
);

COMMENT ON TABLE classhub_auth.accounts IS
    'classhub local accounts; managed by classhub-user and the hub (authenticator.accounts)';
