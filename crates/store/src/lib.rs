//! Coffer's key broker storage: one schema on an embedded SQLite file or a PostgreSQL server,
//! reached through sqlx's `Any` driver so that the broker runs the same queries on both.
//!
//! - Schema migrations are versioned, per backend, embedded ([`migrate`]) and applied when a
//!   store opens.
//! - Keys have versions 1, 2, …; a key is soft-deleted with a purge date, and can be recovered
//!   until purged. A new version takes its number from the key's row, which the creating
//!   transaction locks (PostgreSQL row lock, SQLite write lock), so that concurrent creators,
//!   in this process or in other broker replicas on the same database, never receive the same
//!   number and never lose one; the (name, version) primary key backs this up.
//! - Key material is sealed with AES-256-GCM under the [`MasterKey`], which lives in a file of
//!   its own and never in the database; the associated data binds each ciphertext to its key
//!   name and version. A store refuses to open with a master key other than the one its
//!   database was first used with.
//! - Release policies are kept per key version as the JSON document given, with their
//!   immutability flag; the broker validates them before they reach the store.
//! - The audit log is append-only: the schema's triggers refuse UPDATE and DELETE on it.
#![forbid(unsafe_code)]

mod master_key;
mod migrate;
mod sealing;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Row};
use zeroize::Zeroizing;

pub use master_key::{MASTER_KEY_LEN, MasterKey, MasterKeyError};
pub use sealing::SealError;

/// The longest key name (Key Vault's limit); names are ASCII letters, digits and '-'.
pub const MAX_NAME_LEN: usize = 127;

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// The URL of an SQLite database file, created when missing.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Key material in memory: zeroized when dropped, never printed.
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    pub fn new(bytes: Vec<u8>) -> KeyMaterial {
        KeyMaterial(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMaterial({} bytes)", self.0.len())
    }
}

/// A release policy as stored: the policy document (JSON) and whether it may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub document: String,
    pub immutable: bool,
}

/// What a new key version is made of.
#[derive(Debug)]
pub struct NewVersion {
    pub kty: String,
    pub key_size: u32,
    pub key_ops: Vec<String>,
    pub enabled: bool,
    pub exportable: bool,
    pub material: KeyMaterial,
    /// The public part, for asymmetric keys (stored in the clear).
    pub public_key: Option<Vec<u8>>,
    pub release_policy: Option<StoredPolicy>,
}

/// A key version's attributes (not its material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersion {
    pub name: String,
    pub version: i64,
    pub kty: String,
    pub key_size: u32,
    pub key_ops: Vec<String>,
    pub enabled: bool,
    pub exportable: bool,
    pub public_key: Option<Vec<u8>>,
    pub release_policy: Option<StoredPolicy>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// Changes to a key version's attributes; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct VersionPatch {
    pub enabled: Option<bool>,
    pub release_policy: Option<StoredPolicy>,
}

/// A soft-deleted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedKey {
    pub name: String,
    pub last_version: i64,
    pub deleted_at: i64,
    pub scheduled_purge_at: i64,
}

/// One audit record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Who: the caller's identity (a role and token id, never the token).
    pub principal: String,
    /// What: the operation.
    pub operation: String,
    pub key_name: Option<String>,
    pub version: Option<i64>,
    /// "ok", or the refusal's kind.
    pub outcome: String,
    pub detail: Option<String>,
}

/// An audit record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub record: AuditRecord,
}

/// Why a store did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("unsupported database URL (want sqlite:… or postgres://…)")]
    UnsupportedUrl,
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("cannot prepare the database")]
    Prepare(#[source] sqlx::Error),
    #[error("cannot migrate the database schema")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("cannot seal the master key check")]
    Seal(#[source] SealError),
    #[error("the master key is not the one this database was created with")]
    WrongMasterKey(#[source] SealError),
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid key name {name:?}: 1 to {MAX_NAME_LEN} ASCII letters, digits and '-'")]
    InvalidName { name: String },
    #[error("key {name} not found")]
    KeyNotFound { name: String },
    #[error("version {version} of key {name} not found")]
    VersionNotFound { name: String, version: i64 },
    #[error("key {name} is deleted (recover or purge it first)")]
    Deleted { name: String },
    #[error("key {name} is not deleted")]
    NotDeleted { name: String },
    #[error("key {name} is of type {existing}, not {requested}")]
    KtyMismatch {
        name: String,
        existing: String,
        requested: String,
    },
    #[error("the release policy of key {name} version {version} is immutable")]
    PolicyImmutable { name: String, version: i64 },
    #[error("the stored material of key {name} version {version} does not open")]
    Material {
        name: String,
        version: i64,
        #[source]
        source: SealError,
    },
    #[error("cannot seal the material of key {name}")]
    Seal {
        name: String,
        #[source]
        source: SealError,
    },
    #[error("a stored row of key {name} is malformed: {column}")]
    Malformed { name: String, column: &'static str },
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// The key broker's store.
#[derive(Debug)]
pub struct Store {
    pool: AnyPool,
    master: MasterKey,
    backend: Backend,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Checks a key name: 1 to 127 ASCII letters, digits and '-' (Key Vault's rule).
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(StoreError::InvalidName {
            name: name.chars().take(MAX_NAME_LEN + 1).collect(),
        });
    }
    Ok(())
}

const VERSION_COLUMNS: &str = "v.key_name, v.version, v.kty, v.key_size, v.key_ops, v.enabled, \
     v.exportable, v.public_key, v.created_at, v.updated_at, p.policy, p.immutable";
const VERSION_FROM: &str = "FROM key_versions v JOIN keys k ON k.name = v.key_name \
     LEFT JOIN release_policies p ON p.key_name = v.key_name AND p.version = v.version";

fn version_from_row(row: &AnyRow) -> Result<KeyVersion, StoreError> {
    let name: String = row.try_get(0)?;
    let malformed = |column| StoreError::Malformed {
        name: name.clone(),
        column,
    };
    let key_ops: String = row.try_get(4)?;
    let key_ops: Vec<String> = serde_json::from_str(&key_ops).map_err(|_| malformed("key_ops"))?;
    let key_size: i64 = row.try_get(3)?;
    let policy: Option<String> = row.try_get(10)?;
    let immutable: Option<i64> = row.try_get(11)?;
    let release_policy = match (policy, immutable) {
        (Some(document), Some(immutable)) => Some(StoredPolicy {
            document,
            immutable: immutable != 0,
        }),
        (None, None) => None,
        _ => return Err(malformed("release_policies")),
    };
    Ok(KeyVersion {
        version: row.try_get(1)?,
        kty: row.try_get(2)?,
        key_size: u32::try_from(key_size).map_err(|_| malformed("key_size"))?,
        key_ops,
        enabled: row.try_get::<i64, _>(5)? != 0,
        exportable: row.try_get::<i64, _>(6)? != 0,
        public_key: row.try_get(7)?,
        created_at: row.try_get(8)?,
        updated_at: row.try_get(9)?,
        release_policy,
        name,
    })
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH?mode=rwc`, see [`sqlite_url`], or
    /// `postgres://…`), applies the pending migrations, and checks that `master` is the
    /// database's master key (recording it on first use).
    pub async fn open(url: &str, master: MasterKey) -> Result<Store, OpenError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or(OpenError::UnsupportedUrl)?;
        // One connection first: the journal mode and the migrations.
        let mut conn = AnyConnection::connect(url)
            .await
            .map_err(OpenError::Connect)?;
        if backend == Backend::Sqlite {
            // WAL: readers do not block the writer; persistent in the file. With sqlx's
            // default `synchronous = FULL`, a commit is on disk before it is acknowledged.
            sqlx::raw_sql("PRAGMA journal_mode = WAL")
                .execute(&mut conn)
                .await
                .map_err(OpenError::Prepare)?;
        }
        let migrator = sqlx::migrate::Migrator::new(migrate::Embedded(backend))
            .await
            .map_err(OpenError::Migrate)?;
        migrator
            .run_direct(&mut conn)
            .await
            .map_err(OpenError::Migrate)?;
        conn.close().await.map_err(OpenError::Connect)?;

        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .connect(url)
            .await
            .map_err(OpenError::Connect)?;
        let store = Store {
            pool,
            master,
            backend,
        };
        store.check_master_key().await?;
        Ok(store)
    }

    async fn check_master_key(&self) -> Result<(), OpenError> {
        let check = sealing::master_check(&self.master).map_err(OpenError::Seal)?;
        // First use records the check value; a concurrent first opener's value wins the race
        // and this opener then verifies against it.
        sqlx::query("INSERT INTO meta (name, value) VALUES ('master_key_check', $1) ON CONFLICT (name) DO NOTHING")
            .bind(check)
            .execute(&self.pool)
            .await
            .map_err(OpenError::Prepare)?;
        let stored: Vec<u8> = sqlx::query("SELECT value FROM meta WHERE name = 'master_key_check'")
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(OpenError::Prepare)?;
        sealing::verify_master_check(&self.master, &stored).map_err(OpenError::WrongMasterKey)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for callers' own reads (tests inspect the tables through it).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates the next version of key `name` (the key itself on first use) and returns it.
    pub async fn create_version(
        &self,
        name: &str,
        new: NewVersion,
    ) -> Result<KeyVersion, StoreError> {
        validate_name(name)?;
        let at = now();
        let mut tx = self.pool.begin().await?;
        // Both statements write, so the transaction takes the write lock (SQLite) or the row
        // lock (PostgreSQL) before it reads anything: concurrent creators queue here.
        sqlx::query(
            "INSERT INTO keys (name, kty, last_version, created_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(new.kty.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "UPDATE keys SET last_version = last_version + 1 \
             WHERE name = $1 AND deleted_at IS NULL RETURNING last_version, kty",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::Deleted {
                name: name.to_owned(),
            });
        };
        let version: i64 = row.try_get(0)?;
        let kty: String = row.try_get(1)?;
        if kty != new.kty {
            return Err(StoreError::KtyMismatch {
                name: name.to_owned(),
                existing: kty,
                requested: new.kty,
            });
        }
        let sealed = sealing::seal_material(&self.master, name, version, new.material.as_bytes())
            .map_err(|source| StoreError::Seal {
            name: name.to_owned(),
            source,
        })?;
        let key_ops = serde_json::Value::from(new.key_ops.clone()).to_string();
        sqlx::query(
            "INSERT INTO key_versions (key_name, version, kty, key_size, key_ops, enabled, \
             exportable, material, public_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(name)
        .bind(version)
        .bind(new.kty.as_str())
        .bind(i64::from(new.key_size))
        .bind(key_ops)
        .bind(i64::from(new.enabled))
        .bind(i64::from(new.exportable))
        .bind(sealed)
        .bind(new.public_key.clone())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if let Some(policy) = &new.release_policy {
            sqlx::query(
                "INSERT INTO release_policies (key_name, version, policy, immutable, updated_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(name)
            .bind(version)
            .bind(policy.document.as_str())
            .bind(i64::from(policy.immutable))
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::debug!(name, version, "created key version");
        Ok(KeyVersion {
            name: name.to_owned(),
            version,
            kty,
            key_size: new.key_size,
            key_ops: new.key_ops,
            enabled: new.enabled,
            exportable: new.exportable,
            public_key: new.public_key,
            release_policy: new.release_policy,
            created_at: at,
            updated_at: at,
        })
    }

    /// A version of a live key: `None` is the latest.
    pub async fn get_version(
        &self,
        name: &str,
        version: Option<i64>,
    ) -> Result<KeyVersion, StoreError> {
        validate_name(name)?;
        let row = match version {
            Some(v) => {
                sqlx::query(&format!(
                    "SELECT {VERSION_COLUMNS} {VERSION_FROM} \
                     WHERE v.key_name = $1 AND v.version = $2 AND k.deleted_at IS NULL"
                ))
                .bind(name)
                .bind(v)
                .fetch_optional(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {VERSION_COLUMNS} {VERSION_FROM} \
                     WHERE v.key_name = $1 AND v.version = k.last_version AND k.deleted_at IS NULL"
                ))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        match row {
            Some(row) => version_from_row(&row),
            None => Err(match version {
                Some(version) if self.key_exists(name).await? => StoreError::VersionNotFound {
                    name: name.to_owned(),
                    version,
                },
                _ => StoreError::KeyNotFound {
                    name: name.to_owned(),
                },
            }),
        }
    }

    async fn key_exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("SELECT 1 FROM keys WHERE name = $1 AND deleted_at IS NULL")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// The material of a version of a live key, opened under the master key.
    pub async fn material(&self, name: &str, version: i64) -> Result<KeyMaterial, StoreError> {
        validate_name(name)?;
        let row = sqlx::query(
            "SELECT v.material FROM key_versions v JOIN keys k ON k.name = v.key_name \
             WHERE v.key_name = $1 AND v.version = $2 AND k.deleted_at IS NULL",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::VersionNotFound {
            name: name.to_owned(),
            version,
        })?;
        let sealed: Vec<u8> = row.try_get(0)?;
        let plain =
            sealing::open_material(&self.master, name, version, &sealed).map_err(|source| {
                StoreError::Material {
                    name: name.to_owned(),
                    version,
                    source,
                }
            })?;
        Ok(KeyMaterial(plain))
    }

    /// The latest version of every live key, by name.
    pub async fn list_keys(&self) -> Result<Vec<KeyVersion>, StoreError> {
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} {VERSION_FROM} \
             WHERE v.version = k.last_version AND k.deleted_at IS NULL ORDER BY v.key_name"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_from_row)
        .collect()
    }

    /// Every version of a live key, oldest first.
    pub async fn list_versions(&self, name: &str) -> Result<Vec<KeyVersion>, StoreError> {
        validate_name(name)?;
        let versions: Vec<KeyVersion> = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} {VERSION_FROM} \
             WHERE v.key_name = $1 AND k.deleted_at IS NULL ORDER BY v.version"
        ))
        .bind(name)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_from_row)
        .collect::<Result<_, _>>()?;
        if versions.is_empty() {
            return Err(StoreError::KeyNotFound {
                name: name.to_owned(),
            });
        }
        Ok(versions)
    }

    /// Changes a version's attributes; a release policy marked immutable cannot be replaced.
    pub async fn update_version(
        &self,
        name: &str,
        version: i64,
        patch: VersionPatch,
    ) -> Result<KeyVersion, StoreError> {
        validate_name(name)?;
        let at = now();
        let mut tx = self.pool.begin().await?;
        // A write first: the transaction holds the lock before it reads.
        let touched = sqlx::query(
            "UPDATE key_versions SET updated_at = $3 WHERE key_name = $1 AND version = $2 \
             AND EXISTS (SELECT 1 FROM keys WHERE name = $1 AND deleted_at IS NULL)",
        )
        .bind(name)
        .bind(version)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::VersionNotFound {
                name: name.to_owned(),
                version,
            });
        }
        if let Some(enabled) = patch.enabled {
            sqlx::query(
                "UPDATE key_versions SET enabled = $3 WHERE key_name = $1 AND version = $2",
            )
            .bind(name)
            .bind(version)
            .bind(i64::from(enabled))
            .execute(&mut *tx)
            .await?;
        }
        if let Some(policy) = &patch.release_policy {
            let immutable = sqlx::query(
                "SELECT immutable FROM release_policies WHERE key_name = $1 AND version = $2",
            )
            .bind(name)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<i64, _>(0))
            .transpose()?;
            if immutable == Some(1) {
                return Err(StoreError::PolicyImmutable {
                    name: name.to_owned(),
                    version,
                });
            }
            sqlx::query(
                "INSERT INTO release_policies (key_name, version, policy, immutable, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_name, version) DO UPDATE SET \
                 policy = excluded.policy, immutable = excluded.immutable, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(version)
            .bind(policy.document.as_str())
            .bind(i64::from(policy.immutable))
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.get_version(name, Some(version)).await
    }

    /// Soft-deletes a key (all its versions): it can be recovered until `recovery` has passed,
    /// after which [`Store::purge_expired`] removes it.
    pub async fn delete_key(
        &self,
        name: &str,
        recovery: Duration,
    ) -> Result<DeletedKey, StoreError> {
        validate_name(name)?;
        let at = now();
        let purge_at = at.saturating_add(i64::try_from(recovery.as_secs()).unwrap_or(i64::MAX));
        let row = sqlx::query(
            "UPDATE keys SET deleted_at = $2, scheduled_purge_at = $3 \
             WHERE name = $1 AND deleted_at IS NULL RETURNING last_version",
        )
        .bind(name)
        .bind(at)
        .bind(purge_at)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::KeyNotFound {
            name: name.to_owned(),
        })?;
        Ok(DeletedKey {
            name: name.to_owned(),
            last_version: row.try_get(0)?,
            deleted_at: at,
            scheduled_purge_at: purge_at,
        })
    }

    /// The soft-deleted keys, by name.
    pub async fn list_deleted(&self) -> Result<Vec<DeletedKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, last_version, deleted_at, scheduled_purge_at FROM keys \
             WHERE deleted_at IS NOT NULL ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeletedKey {
                    name: row.try_get(0)?,
                    last_version: row.try_get(1)?,
                    deleted_at: row.try_get(2)?,
                    scheduled_purge_at: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Undoes a soft delete.
    pub async fn recover_key(&self, name: &str) -> Result<(), StoreError> {
        validate_name(name)?;
        let done = sqlx::query(
            "UPDATE keys SET deleted_at = NULL, scheduled_purge_at = NULL \
             WHERE name = $1 AND deleted_at IS NOT NULL",
        )
        .bind(name)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotDeleted {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Removes a soft-deleted key and all its versions for good.
    pub async fn purge_key(&self, name: &str) -> Result<(), StoreError> {
        validate_name(name)?;
        let done = sqlx::query("DELETE FROM keys WHERE name = $1 AND deleted_at IS NOT NULL")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotDeleted {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Purges the deleted keys whose recovery period has ended; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM keys WHERE deleted_at IS NOT NULL AND scheduled_purge_at <= $1",
        )
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Appends a record to the audit log.
    pub async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, principal, operation, key_name, version, outcome, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now())
        .bind(record.principal.as_str())
        .bind(record.operation.as_str())
        .bind(record.key_name.clone())
        .bind(record.version)
        .bind(record.outcome.as_str())
        .bind(record.detail.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Appends several records to the audit log in one transaction (one commit, one sync): the
    /// broker's group commit of concurrent requests' records.
    pub async fn append_audit_batch(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let at = now();
        let mut tx = self.pool.begin().await?;
        for record in records {
            sqlx::query(
                "INSERT INTO audit (at, principal, operation, key_name, version, outcome, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(at)
            .bind(record.principal.as_str())
            .bind(record.operation.as_str())
            .bind(record.key_name.clone())
            .bind(record.version)
            .bind(record.outcome.as_str())
            .bind(record.detail.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Audit records with an id above `after`, oldest first, at most `limit`.
    pub async fn audit_log(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, principal, operation, key_name, version, outcome, detail FROM audit \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get(0)?,
                    at: row.try_get(1)?,
                    record: AuditRecord {
                        principal: row.try_get(2)?,
                        operation: row.try_get(3)?,
                        key_name: row.try_get(4)?,
                        version: row.try_get(5)?,
                        outcome: row.try_get(6)?,
                        detail: row.try_get(7)?,
                    },
                })
            })
            .collect()
    }
}
