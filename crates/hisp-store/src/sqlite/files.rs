//! The database file on disk: created 0600 in a 0700 directory, never wider.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Mode of the database file and its `-wal`/`-shm` companions: they hold
/// private keys.
pub(crate) const DB_MODE: u32 = 0o600;

/// Mode of a data directory the store creates.
const DIR_MODE: u32 = 0o700;

/// Creates the directory (0700) and an empty database file (0600) when
/// missing, and narrows an existing file's mode to 0600 before SQLite opens
/// it, so the keys never sit in a file others can read.
///
/// An existing database file is never opened here: closing a descriptor of
/// it would drop every POSIX lock the process holds on it, including those
/// SQLite holds through another connection, and another process (an
/// administrator's `sqlite3`) could then take the database for its own and
/// delete the WAL under the running server. `create_new` opens only a file
/// it makes, and the mode is read and narrowed by path.
pub(crate) fn prepare(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(|source| StoreError::Io {
                    action: "create the data directory",
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(DB_MODE)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(StoreError::Io {
                action: "create the database file",
                path: path.to_path_buf(),
                source,
            })
        }
    }
    narrow(path)
}

/// Narrows the `-wal` and `-shm` files, when present, to 0600.
pub(crate) fn narrow_sidecars(path: &Path) -> Result<(), StoreError> {
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let sidecar = PathBuf::from(name);
        if sidecar.exists() {
            narrow(&sidecar)?;
        }
    }
    Ok(())
}

fn narrow(path: &Path) -> Result<(), StoreError> {
    let io = |action| {
        move |source| StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let mode = std::fs::metadata(path)
        .map_err(io("read the mode of"))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "the database holds private keys: narrowing its mode to 0600"
        );
        std::fs::set_permissions(path, Permissions::from_mode(DB_MODE))
            .map_err(io("narrow the mode of"))?;
    }
    Ok(())
}
