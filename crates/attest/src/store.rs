//! Where attestation policies persist: the [`PolicyStore`] trait and its SQLite implementation.
//!
//! The service keeps no other state, so several instances can serve behind one load balancer
//! when they share the store.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use thiserror::Error;

/// A store of the current policy text for each attestation type.
pub trait PolicyStore: Send + Sync + 'static {
    /// The policy set for `attestation_type`, or `None` for the default.
    fn get(
        &self,
        attestation_type: &str,
    ) -> impl Future<Output = Result<Option<String>, PolicyStoreError>> + Send;
    /// Sets the policy of `attestation_type`.
    fn set(
        &self,
        attestation_type: &str,
        policy_text: &str,
    ) -> impl Future<Output = Result<(), PolicyStoreError>> + Send;
    /// Returns `attestation_type` to the default policy.
    fn reset(
        &self,
        attestation_type: &str,
    ) -> impl Future<Output = Result<(), PolicyStoreError>> + Send;
}

/// A policy store operation failed.
#[derive(Debug, Error)]
pub enum PolicyStoreError {
    #[error("policy store: cannot open the database: {0}")]
    Open(#[source] sqlx::Error),
    #[error("policy store: migrations failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("policy store: query failed: {0}")]
    Query(#[source] sqlx::Error),
}

/// Policies in an SQLite file (created if missing, migrations applied at open).
#[derive(Debug, Clone)]
pub struct SqlitePolicyStore {
    pool: SqlitePool,
}

impl SqlitePolicyStore {
    /// Opens (or creates) the database file at `path` and applies the migrations.
    pub async fn open(path: &Path) -> Result<SqlitePolicyStore, PolicyStoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(PolicyStoreError::Open)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(PolicyStoreError::Migrate)?;
        Ok(SqlitePolicyStore { pool })
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl PolicyStore for SqlitePolicyStore {
    async fn get(&self, attestation_type: &str) -> Result<Option<String>, PolicyStoreError> {
        sqlx::query_scalar::<_, String>(
            "SELECT policy_text FROM attestation_policies WHERE attestation_type = ?",
        )
        .bind(attestation_type)
        .fetch_optional(&self.pool)
        .await
        .map_err(PolicyStoreError::Query)
    }

    async fn set(&self, attestation_type: &str, policy_text: &str) -> Result<(), PolicyStoreError> {
        sqlx::query(
            "INSERT INTO attestation_policies (attestation_type, policy_text, updated_at) \
             VALUES (?, ?, ?) ON CONFLICT (attestation_type) DO UPDATE SET \
             policy_text = excluded.policy_text, updated_at = excluded.updated_at",
        )
        .bind(attestation_type)
        .bind(policy_text)
        .bind(now_secs())
        .execute(&self.pool)
        .await
        .map_err(PolicyStoreError::Query)?;
        Ok(())
    }

    async fn reset(&self, attestation_type: &str) -> Result<(), PolicyStoreError> {
        sqlx::query("DELETE FROM attestation_policies WHERE attestation_type = ?")
            .bind(attestation_type)
            .execute(&self.pool)
            .await
            .map_err(PolicyStoreError::Query)?;
        Ok(())
    }
}
