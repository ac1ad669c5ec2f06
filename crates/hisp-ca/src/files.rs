//! Writing certificates and keys to disk without ever exposing a key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::CaError;

/// Mode of private key files: owner read/write only.
pub(crate) const KEY_MODE: u32 = 0o600;
/// Mode of certificate files: world-readable, they are public.
pub(crate) const CERT_MODE: u32 = 0o644;

/// One file to write: its name in the output directory, its bytes and mode.
pub(crate) struct OutFile<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub mode: u32,
}

/// Writes every file into `dir` (created if missing), refusing before writing
/// anything when one of them already exists.
pub(crate) fn write_all(dir: &Path, files: &[OutFile<'_>]) -> Result<Vec<PathBuf>, CaError> {
    fs::create_dir_all(dir).map_err(|cause| CaError::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f.name)).collect();
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        return Err(CaError::AlreadyExists(existing.clone()));
    }
    for (file, path) in files.iter().zip(&paths) {
        write_new(path, file.bytes, file.mode)?;
    }
    Ok(paths)
}

/// Creates `path` with `mode` from the start (the mode is given to open(2),
/// so a key is never readable by others, not even for a moment) and writes
/// `bytes`. Fails if the file exists.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let io = |cause| CaError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CaError::AlreadyExists(path.to_path_buf())
            } else {
                io(e)
            }
        })?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CaError> {
    fs::read(path).map_err(|cause| CaError::Io {
        path: path.to_path_buf(),
        cause,
    })
}
