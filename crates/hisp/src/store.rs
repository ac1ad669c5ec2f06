//! Opening the store named by the configuration: `<data_dir>/hisp.db`, or
//! the PostgreSQL database of `[store] url`.

use std::sync::Arc;

use anyhow::{bail, Context};
use hisp_store::{MigrationReport, PostgresPool, PostgresStore, SqliteStore, Store, DB_FILE};

use crate::config::Config;

/// The store a command works on.
pub enum OpenStore {
    /// `<data_dir>/hisp.db`, for one instance.
    Sqlite(Box<SqliteStore>),
    /// The database of `[store] url`, shared by several instances.
    Postgres(Box<PostgresStore>),
}

impl std::ops::Deref for OpenStore {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        match self {
            OpenStore::Sqlite(s) => &**s,
            OpenStore::Postgres(s) => &**s,
        }
    }
}

impl OpenStore {
    /// The database: the SQLite file, or the URL (which holds no password).
    pub fn database(&self) -> String {
        match self {
            OpenStore::Sqlite(s) => s.path().display().to_string(),
            OpenStore::Postgres(s) => s.pool().url().as_str().to_string(),
        }
    }

    /// What opening the store did to its schema.
    pub fn migration(&self) -> &MigrationReport {
        match self {
            OpenStore::Sqlite(s) => s.migration(),
            OpenStore::Postgres(s) => s.migration(),
        }
    }

    /// The store, for sharing between the server's parts.
    pub fn shared(self) -> Arc<dyn Store> {
        match self {
            OpenStore::Sqlite(s) => Arc::new(*s),
            OpenStore::Postgres(s) => Arc::new(*s),
        }
    }
}

/// Opens (creating or migrating if needed) the configured store: the
/// PostgreSQL database of `[store] url`, claiming as `[store] instance`,
/// else the SQLite store in `data_dir`. Without either there is no store,
/// and the error says how to configure one.
pub fn open(config: &Config) -> anyhow::Result<OpenStore> {
    if let Some(url) = &config.store.url {
        let password = config.store.password()?;
        let store = PostgresStore::open(
            url,
            password.as_deref(),
            config.store.pool_size(),
            &config.store.instance()?,
        )
        .with_context(|| format!("cannot open the PostgreSQL store {url}"))?;
        return Ok(OpenStore::Postgres(Box::new(store)));
    }
    open_sqlite(config).map(|s| OpenStore::Sqlite(Box::new(s)))
}

/// The SQLite store in `data_dir`.
fn open_sqlite(config: &Config) -> anyhow::Result<SqliteStore> {
    let Some(dir) = &config.data_dir else {
        bail!(
            "no data_dir configured: this command uses the store <data_dir>/{DB_FILE}; \
             set data_dir in the config file given by --config FILE or HISP_CONFIG"
        );
    };
    SqliteStore::open_in(dir)
        .with_context(|| format!("cannot open the store {}", dir.join(DB_FILE).display()))
}

/// The pool of the PostgreSQL database of `[store] url`, with the password
/// from `HISP_STORE_PASSWORD` or `[store] password_file`; `None` when no URL
/// is configured (the store is SQLite).
pub fn open_postgres(config: &Config) -> anyhow::Result<Option<PostgresPool>> {
    let Some(url) = &config.store.url else {
        return Ok(None);
    };
    let password = config.store.password()?;
    PostgresPool::open(url, password.as_deref(), config.store.pool_size())
        .with_context(|| format!("cannot open the PostgreSQL store {url}"))
        .map(Some)
}
