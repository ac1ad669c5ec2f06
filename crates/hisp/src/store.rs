//! Opening the store named by the configuration: `<data_dir>/hisp.db`, or
//! the PostgreSQL database of `[store] url`.

use anyhow::{bail, Context};
use hisp_store::{PostgresPool, SqliteStore, DB_FILE};

use crate::config::Config;

/// Opens (creating if needed) the SQLite store in the configured data
/// directory. Without `data_dir` there is no store, and the error says how to
/// configure one. With `[store] url` set the command is refused: no command
/// but `hisp store migrate` works on PostgreSQL yet.
pub fn open(config: &Config) -> anyhow::Result<SqliteStore> {
    if let Some(url) = &config.store.url {
        bail!(
            "[store] url is set ({url}), but serving from PostgreSQL is not built yet, and no \
             command but `hisp store migrate` uses it: remove [store] url to use the SQLite \
             store <data_dir>/{DB_FILE}"
        );
    }
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
