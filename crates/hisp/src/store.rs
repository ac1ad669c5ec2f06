//! Opening the store named by the configuration: `<data_dir>/hisp.db`.

use anyhow::{bail, Context};
use hisp_store::{SqliteStore, DB_FILE};

use crate::config::Config;

/// Opens (creating if needed) the SQLite store in the configured data
/// directory. Without `data_dir` there is no store, and the error says how to
/// configure one.
pub fn open(config: &Config) -> anyhow::Result<SqliteStore> {
    let Some(dir) = &config.data_dir else {
        bail!(
            "no data_dir configured: this command uses the store <data_dir>/{DB_FILE}; \
             set data_dir in the config file given by --config FILE or HISP_CONFIG"
        );
    };
    SqliteStore::open_in(dir)
        .with_context(|| format!("cannot open the store {}", dir.join(DB_FILE).display()))
}
