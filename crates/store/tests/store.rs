//! coffer-store on a real SQLite file and a real PostgreSQL server (`COFFER_TEST_POSTGRES_URL`,
//! started by `.ci/run`): versions, soft delete, policies, the audit log, concurrency, sealing
//! at rest, and a writer killed with SIGKILL mid-stream.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use coffer_store::{
    AuditRecord, KeyMaterial, MasterKey, NewVersion, OpenError, Store, StoreError, StoredPolicy,
    VersionPatch, sqlite_url,
};
use coffer_testkit::postgres::POSTGRES_TEST_MASTER_KEY;
use coffer_testkit::process::Spawned;
use sha2::{Digest, Sha256};
use sqlx::Row;

fn material_for(name: &str, version: i64) -> Vec<u8> {
    Sha256::digest(format!("{name}/{version}")).to_vec()
}

fn oct(material: Vec<u8>, policy: Option<(&str, bool)>) -> NewVersion {
    NewVersion {
        kty: "oct-HSM".to_owned(),
        key_size: 256,
        key_ops: vec!["wrapKey".to_owned(), "unwrapKey".to_owned()],
        enabled: true,
        exportable: policy.is_some(),
        material: KeyMaterial::new(material),
        public_key: None,
        release_policy: policy.map(|(document, immutable)| StoredPolicy {
            document: document.to_owned(),
            immutable,
        }),
    }
}

/// A unique key-name prefix: the PostgreSQL database is shared by tests and runs.
fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

fn write_key_file(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

async fn open_sqlite(dir: &Path) -> Store {
    let master = MasterKey::load_or_create(&dir.join("master.key")).unwrap();
    Store::open(&sqlite_url(&dir.join("kbs.db")), master)
        .await
        .unwrap()
}

/// The PostgreSQL test store (with the shared test master key), or `None` when skipped.
async fn open_postgres(test: &str, dir: &Path) -> Option<Store> {
    let url = coffer_testkit::postgres_url(test)?;
    let path = dir.join("pg-master.key");
    if !path.exists() {
        write_key_file(&path, &POSTGRES_TEST_MASTER_KEY);
    }
    let master = MasterKey::load(&path).unwrap();
    Some(Store::open(&url, master).await.unwrap())
}

async fn lifecycle(store: &Store, p: &str) {
    let name = format!("{p}-life");
    let policy = r#"{"anyOf":[]}"#;
    let v1 = store
        .create_version(&name, oct(material_for(&name, 1), Some((policy, false))))
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    let v2 = store
        .create_version(&name, oct(material_for(&name, 2), Some((policy, true))))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(store.get_version(&name, None).await.unwrap(), v2);
    assert_eq!(store.get_version(&name, Some(1)).await.unwrap(), v1);
    assert_eq!(
        store.material(&name, 1).await.unwrap().as_bytes(),
        material_for(&name, 1)
    );
    assert_eq!(
        store.list_versions(&name).await.unwrap(),
        vec![v1.clone(), v2.clone()]
    );
    assert!(store.list_keys().await.unwrap().contains(&v2));
    assert!(matches!(
        store.get_version(&name, Some(3)).await,
        Err(StoreError::VersionNotFound { version: 3, .. })
    ));
    // Another key type under the same name is refused.
    let mut rsa = oct(vec![1; 32], None);
    rsa.kty = "RSA".to_owned();
    assert!(matches!(
        store.create_version(&name, rsa).await,
        Err(StoreError::KtyMismatch { .. })
    ));
    assert_eq!(
        store.get_version(&name, None).await.unwrap().version,
        2,
        "refused version left no trace"
    );

    // Policies: the mutable one changes, the immutable one does not; attributes do.
    let new_policy = StoredPolicy {
        document: r#"{"anyOf":[{"authority":"x","allOf":[]}]}"#.to_owned(),
        immutable: false,
    };
    let patched = store
        .update_version(
            &name,
            1,
            VersionPatch {
                enabled: Some(false),
                release_policy: Some(new_policy.clone()),
            },
        )
        .await
        .unwrap();
    assert!(!patched.enabled);
    assert_eq!(patched.release_policy, Some(new_policy.clone()));
    assert!(matches!(
        store
            .update_version(
                &name,
                2,
                VersionPatch {
                    enabled: Some(false),
                    release_policy: Some(new_policy),
                },
            )
            .await,
        Err(StoreError::PolicyImmutable { version: 2, .. })
    ));
    assert!(
        store.get_version(&name, Some(2)).await.unwrap().enabled,
        "refused patch changed nothing"
    );

    // Soft delete, recovery, purge.
    let deleted = store
        .delete_key(&name, Duration::from_secs(90 * 86400))
        .await
        .unwrap();
    assert_eq!(deleted.last_version, 2);
    assert_eq!(deleted.scheduled_purge_at - deleted.deleted_at, 90 * 86400);
    assert!(matches!(
        store.get_version(&name, None).await,
        Err(StoreError::KeyNotFound { .. })
    ));
    assert!(matches!(
        store.material(&name, 1).await,
        Err(StoreError::VersionNotFound { .. })
    ));
    assert!(
        !store
            .list_keys()
            .await
            .unwrap()
            .iter()
            .any(|k| k.name == name)
    );
    assert!(store.list_deleted().await.unwrap().contains(&deleted));
    assert!(matches!(
        store.create_version(&name, oct(vec![0; 32], None)).await,
        Err(StoreError::Deleted { .. })
    ));
    store.recover_key(&name).await.unwrap();
    assert_eq!(store.get_version(&name, None).await.unwrap(), v2);
    assert!(matches!(
        store.purge_key(&name).await,
        Err(StoreError::NotDeleted { .. })
    ));
    store.delete_key(&name, Duration::ZERO).await.unwrap();
    assert!(store.purge_expired().await.unwrap() >= 1);
    assert!(
        !store
            .list_deleted()
            .await
            .unwrap()
            .iter()
            .any(|k| k.name == name)
    );
    // The name is free again, from version 1.
    let again = store
        .create_version(&name, oct(vec![7; 32], None))
        .await
        .unwrap();
    assert_eq!(again.version, 1);
    store
        .delete_key(&name, Duration::from_secs(60))
        .await
        .unwrap();
    store.purge_key(&name).await.unwrap();

    assert!(matches!(
        store
            .create_version("bad/name", oct(vec![0; 32], None))
            .await,
        Err(StoreError::InvalidName { .. })
    ));
}

async fn audit_is_append_only(store: &Store, p: &str) {
    let record = AuditRecord {
        principal: "administrator:t1".to_owned(),
        operation: "create".to_owned(),
        key_name: Some(format!("{p}-audit")),
        version: Some(1),
        outcome: "ok".to_owned(),
        detail: None,
    };
    store.append_audit(&record).await.unwrap();
    let log = store.audit_log(0, i64::MAX).await.unwrap();
    let entry = log
        .iter()
        .rev()
        .find(|e| e.record == record)
        .expect("record appended");
    assert!(entry.at > 1_700_000_000);
    let update = sqlx::query("UPDATE audit SET outcome = 'forged' WHERE id = $1")
        .bind(entry.id)
        .execute(store.pool())
        .await;
    assert!(update.is_err(), "the audit log accepted an UPDATE");
    let delete = sqlx::query("DELETE FROM audit WHERE id = $1")
        .bind(entry.id)
        .execute(store.pool())
        .await;
    assert!(delete.is_err(), "the audit log accepted a DELETE");
    let after = store.audit_log(entry.id - 1, 1).await.unwrap();
    assert_eq!(after[0], *entry);
    // A batch lands whole, in order.
    let batch: Vec<AuditRecord> = (0..3)
        .map(|i| AuditRecord {
            operation: format!("batch-{i}"),
            ..record.clone()
        })
        .collect();
    store.append_audit_batch(&batch).await.unwrap();
    let log = store.audit_log(entry.id, i64::MAX).await.unwrap();
    let mine: Vec<AuditRecord> = log
        .into_iter()
        .map(|e| e.record)
        .filter(|r| r.key_name == record.key_name && r.operation.starts_with("batch-"))
        .collect();
    assert_eq!(mine, batch);
}

/// Many tasks create versions of one key at once: versions 1..=N, each once, each with its
/// creator's material.
async fn concurrent_versions(store: Arc<Store>, p: &str) {
    const TASKS: usize = 24;
    const EACH: usize = 5;
    let name = format!("{p}-race");
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..EACH {
                let material = Sha256::digest(format!("{t}/{i}")).to_vec();
                let v = store
                    .create_version(&name, oct(material.clone(), None))
                    .await
                    .unwrap();
                mine.push((v.version, material));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let versions: BTreeSet<i64> = all.iter().map(|(v, _)| *v).collect();
    let total = i64::try_from(TASKS * EACH).unwrap();
    assert_eq!(
        versions.len(),
        TASKS * EACH,
        "a version number was handed out twice"
    );
    assert_eq!(
        versions,
        (1..=total).collect(),
        "a version number was skipped"
    );
    let stored = store.list_versions(&name).await.unwrap();
    assert_eq!(stored.len(), TASKS * EACH);
    for (version, material) in &all {
        assert_eq!(
            store.material(&name, *version).await.unwrap().as_bytes(),
            material.as_slice()
        );
    }
    store.delete_key(&name, Duration::ZERO).await.unwrap();
    store.purge_key(&name).await.unwrap();
}

/// Changed ciphertext, and ciphertext moved to another version, do not open.
async fn tampering_refused(store: &Store, p: &str) {
    let name = format!("{p}-tamper");
    for v in 1..=2 {
        store
            .create_version(&name, oct(material_for(&name, v), None))
            .await
            .unwrap();
    }
    let sealed = |v: i64| {
        let name = name.clone();
        async move {
            let row = sqlx::query(
                "SELECT material FROM key_versions WHERE key_name = $1 AND version = $2",
            )
            .bind(name)
            .bind(v)
            .fetch_one(store.pool())
            .await
            .unwrap();
            row.try_get::<Vec<u8>, _>(0).unwrap()
        }
    };
    let set = |v: i64, bytes: Vec<u8>| {
        let name = name.clone();
        async move {
            sqlx::query(
                "UPDATE key_versions SET material = $3 WHERE key_name = $1 AND version = $2",
            )
            .bind(name)
            .bind(v)
            .bind(bytes)
            .execute(store.pool())
            .await
            .unwrap();
        }
    };
    let one = sealed(1).await;
    let two = sealed(2).await;
    assert_ne!(
        one[12..],
        material_for(&name, 1)[..],
        "material stored in the clear"
    );
    assert!(
        !one.windows(32).any(|w| w == material_for(&name, 1)),
        "material stored in the clear"
    );
    // Fresh nonces: the same material sealed twice differs.
    let again = format!("{name}-again");
    store
        .create_version(&again, oct(material_for(&name, 1), None))
        .await
        .unwrap();

    let mut flipped = one.clone();
    let last = flipped.len() - 1;
    flipped[20] ^= 1;
    set(1, flipped).await;
    assert!(matches!(
        store.material(&name, 1).await,
        Err(StoreError::Material { version: 1, .. })
    ));
    let mut tag = one.clone();
    tag[last] ^= 0x80;
    set(1, tag).await;
    assert!(matches!(
        store.material(&name, 1).await,
        Err(StoreError::Material { .. })
    ));
    set(1, one[..20].to_vec()).await;
    assert!(matches!(
        store.material(&name, 1).await,
        Err(StoreError::Material { .. })
    ));
    // Version 2's intact ciphertext in version 1's row: bound to (name, 2), refused.
    set(1, two.clone()).await;
    assert!(matches!(
        store.material(&name, 1).await,
        Err(StoreError::Material { .. })
    ));
    // Restored, it opens again.
    set(1, one).await;
    assert_eq!(
        store.material(&name, 1).await.unwrap().as_bytes(),
        material_for(&name, 1)
    );
    assert_eq!(
        store.material(&name, 2).await.unwrap().as_bytes(),
        material_for(&name, 2)
    );
    for n in [&name, &again] {
        store.delete_key(n, Duration::ZERO).await.unwrap();
        store.purge_key(n).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open_sqlite(dir.path()).await);
    lifecycle(&store, "s").await;
    audit_is_append_only(&store, "s").await;
    tampering_refused(&store, "s").await;
    concurrent_versions(store.clone(), "s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store() {
    let dir = tempfile::tempdir().unwrap();
    let Some(store) = open_postgres("postgres_store", dir.path()).await else {
        return;
    };
    let store = Arc::new(store);
    let p = prefix("pg");
    lifecycle(&store, &p).await;
    audit_is_append_only(&store, &p).await;
    tampering_refused(&store, &p).await;
    concurrent_versions(store.clone(), &p).await;
}

/// Two stores (two broker replicas) on one PostgreSQL database create versions of one key at
/// the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_replicas_concurrent_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (Some(a), Some(b)) = (
        open_postgres("postgres_two_replicas_concurrent_versions", dir.path()).await,
        open_postgres("postgres_two_replicas_concurrent_versions", dir.path()).await,
    ) else {
        return;
    };
    let name = format!("{}-two", prefix("pg"));
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            let mut v = Vec::new();
            for _ in 0..4 {
                v.push(
                    store
                        .create_version(&name, oct(vec![1; 32], None))
                        .await
                        .unwrap()
                        .version,
                );
            }
            v
        }));
    }
    let mut all = BTreeSet::new();
    for t in tasks {
        for v in t.await.unwrap() {
            assert!(all.insert(v), "version {v} handed out twice");
        }
    }
    assert_eq!(all, (1..=64).collect());
    assert_eq!(b.list_versions(&name).await.unwrap().len(), 64);
}

#[tokio::test]
async fn wrong_master_key_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_sqlite(dir.path()).await;
    store
        .create_version("k", oct(vec![5; 32], None))
        .await
        .unwrap();
    store.close().await;
    write_key_file(&dir.path().join("other.key"), &[9u8; 32]);
    let other = MasterKey::load(&dir.path().join("other.key")).unwrap();
    let opened = Store::open(&sqlite_url(&dir.path().join("kbs.db")), other).await;
    assert!(
        matches!(opened, Err(OpenError::WrongMasterKey(_))),
        "{opened:?}"
    );
    // The right key still opens it.
    let store = open_sqlite(dir.path()).await;
    assert_eq!(store.material("k", 1).await.unwrap().as_bytes(), [5; 32]);

    let pdir = tempfile::tempdir().unwrap();
    if let Some(url) = coffer_testkit::postgres_url("wrong_master_key_refused (PostgreSQL)") {
        // Make sure the database has its check value, then come with another key.
        drop(open_postgres("wrong_master_key_refused", pdir.path()).await);
        let opened = Store::open(
            &url,
            MasterKey::load(&dir.path().join("other.key")).unwrap(),
        )
        .await;
        assert!(
            matches!(opened, Err(OpenError::WrongMasterKey(_))),
            "{opened:?}"
        );
    }
}

#[test]
fn master_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let created = MasterKey::load_or_create(&path).unwrap();
    drop(created);
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    let bytes = std::fs::read(&path).unwrap();
    MasterKey::load_or_create(&path).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "an existing key was replaced"
    );
    assert!(
        !std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().contains(".tmp") })
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        MasterKey::load(&path),
        Err(coffer_store::MasterKeyError::Permissions { mode: 0o644, .. })
    ));
    let short = dir.path().join("short.key");
    write_key_file(&short, &[1; 31]);
    assert!(matches!(
        MasterKey::load(&short),
        Err(coffer_store::MasterKeyError::Length { len: 31, .. })
    ));
    let long = dir.path().join("long.key");
    write_key_file(&long, &[1; 33]);
    assert!(matches!(
        MasterKey::load(&long),
        Err(coffer_store::MasterKeyError::Length { .. })
    ));
}

const DURABILITY_DIR: &str = "COFFER_STORE_DURABILITY_DIR";

/// The writer of `durability_after_sigkill`, run in a child process: creates keys one after
/// another and prints each acknowledged creation. Does nothing when not run as that child.
#[tokio::test]
#[ignore = "run by durability_after_sigkill in a child process"]
async fn durability_child() {
    let Some(dir) = std::env::var_os(DURABILITY_DIR) else {
        return;
    };
    let store = open_sqlite(&PathBuf::from(dir)).await;
    let mut out = std::io::stdout();
    for i in 0.. {
        let name = format!("d{i}");
        store
            .create_version(&name, oct(material_for(&name, 1), None))
            .await
            .unwrap();
        writeln!(out, "created {name}").unwrap();
        out.flush().unwrap();
    }
}

/// A writer is SIGKILLed while it creates keys; every creation it acknowledged is in the
/// reopened database, intact, and SQLite's integrity check passes.
#[tokio::test]
async fn durability_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Spawned::start(
        "durability writer",
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "durability_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DURABILITY_DIR, dir.path()),
    );
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 150 {
        let line = child.line(Duration::from_secs(60));
        if let Some(name) = line.strip_prefix("created ") {
            acknowledged.push(name.to_owned());
        }
    }
    // SIGKILL in the middle of the stream: the writer is creating the next key right now.
    child.kill();

    let store = open_sqlite(dir.path()).await;
    let check: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(check, "ok");
    for name in &acknowledged {
        let v = store.get_version(name, None).await.unwrap();
        assert_eq!(v.version, 1);
        assert_eq!(
            store.material(name, 1).await.unwrap().as_bytes(),
            material_for(name, 1)
        );
    }
    // Whatever else made it in is whole too.
    let keys = store.list_keys().await.unwrap();
    assert!(keys.len() >= acknowledged.len());
    for k in keys {
        assert_eq!(
            store.material(&k.name, 1).await.unwrap().as_bytes(),
            material_for(&k.name, 1)
        );
    }
}
