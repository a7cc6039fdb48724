-- One current policy per attestation type ("SgxEnclave"). Absent row: the default policy.
CREATE TABLE IF NOT EXISTS attestation_policies (
    attestation_type TEXT PRIMARY KEY NOT NULL,
    policy_text      TEXT NOT NULL,
    updated_at       INTEGER NOT NULL
);
