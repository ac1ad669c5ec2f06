//! Where the PostgreSQL server binaries are.

use std::path::{Path, PathBuf};

/// The directory holding `initdb` and `postgres`: the newest version under
/// Debian's `/usr/lib/postgresql`, else the first `PATH` entry with both.
pub(crate) fn find() -> Result<PathBuf, String> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Some(bin) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_both(dir))
    {
        return Ok(bin);
    }
    Err(
        "the PostgreSQL server binaries (initdb, postgres) are not in \
         /usr/lib/postgresql/<version>/bin nor on the PATH: install Debian's \
         postgresql package (apt-get install postgresql; ./tests/run.sh does)"
            .to_string(),
    )
}
