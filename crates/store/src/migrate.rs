//! Versioned schema migrations, one set per backend, embedded in the binary and applied with
//! sqlx's migrator (which records them in `_sqlx_migrations` and refuses a changed migration).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType};

use crate::Backend;

const SQLITE: &[(i64, &str, &str)] = &[(
    1,
    "init",
    include_str!("../migrations/sqlite/0001_init.sql"),
)];
const POSTGRES: &[(i64, &str, &str)] = &[(
    1,
    "init",
    include_str!("../migrations/postgres/0001_init.sql"),
)];

/// The embedded migrations of one backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Embedded(pub(crate) Backend);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        let set = match self.0 {
            Backend::Sqlite => SQLITE,
            Backend::Postgres => POSTGRES,
        };
        let migrations = set
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}
