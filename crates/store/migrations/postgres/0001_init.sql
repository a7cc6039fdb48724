-- Coffer key broker, schema 1 (PostgreSQL). Times are Unix seconds; flags are 0/1.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value BYTEA NOT NULL
);

CREATE TABLE keys (
    name               TEXT PRIMARY KEY NOT NULL,
    kty                TEXT NOT NULL,
    last_version       BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    deleted_at         BIGINT,
    scheduled_purge_at BIGINT
);

CREATE TABLE key_versions (
    key_name   TEXT NOT NULL REFERENCES keys (name) ON DELETE CASCADE,
    version    BIGINT NOT NULL,
    kty        TEXT NOT NULL,
    key_size   BIGINT NOT NULL,
    key_ops    TEXT NOT NULL,
    enabled    BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    exportable BIGINT NOT NULL CHECK (exportable IN (0, 1)),
    -- nonce (12 bytes) || AES-256-GCM ciphertext and tag, under the master key, AAD (name, version)
    material   BYTEA NOT NULL,
    public_key BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (key_name, version)
);

CREATE TABLE release_policies (
    key_name   TEXT NOT NULL,
    version    BIGINT NOT NULL,
    policy     TEXT NOT NULL,
    immutable  BIGINT NOT NULL CHECK (immutable IN (0, 1)),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (key_name, version),
    FOREIGN KEY (key_name, version) REFERENCES key_versions (key_name, version) ON DELETE CASCADE
);

CREATE TABLE audit (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    principal TEXT NOT NULL,
    operation TEXT NOT NULL,
    key_name  TEXT,
    version   BIGINT,
    outcome   TEXT NOT NULL,
    detail    TEXT
);

CREATE FUNCTION coffer_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;

CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION coffer_audit_append_only();

CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION coffer_audit_append_only();
