-- Who changed which local account, and how: written in the same transaction as
-- the change by authenticator.accounts; never updated or deleted by classhub.

CREATE TABLE classhub_auth.account_audit (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    action   text NOT NULL,
    username text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT account_audit_action_check CHECK (
        action IN ('create', 'password', 'role', 'disable', 'enable', 'delete')
    )
);

CREATE INDEX account_audit_username_at ON classhub_auth.account_audit (username, at DESC);

COMMENT ON TABLE classhub_auth.account_audit IS
    'classhub local accounts: every change (create, password, role, disable, enable, delete)';
