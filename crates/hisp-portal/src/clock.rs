//! Where the portal reads the time: sessions, login throttling and the
//! retention period all ask a [`Clock`], so tests move time instead of
//! sleeping.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until moved, for tests. Clones share the time.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<Mutex<OffsetDateTime>>);

impl FakeClock {
    /// A clock standing at `at`.
    pub fn at(at: OffsetDateTime) -> FakeClock {
        FakeClock(Arc::new(Mutex::new(at)))
    }

    /// Moves the clock on by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The system's clock moved on by a number of seconds read from a file at
/// every look, so that a test can move a running `hisp serve`'s portal
/// through days (retention) and minutes (login throttling) without
/// waiting. `hisp serve` uses it only when `HISP_CLOCK_OFFSET_FILE` names
/// the file; it is not a setting for production.
#[derive(Debug, Clone)]
pub struct OffsetFileClock {
    path: PathBuf,
}

/// Why an offset file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OffsetFileError {
    /// The file cannot be read.
    #[error("cannot read the clock offset file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold a whole number of seconds.
    #[error("the clock offset file {path} must hold a whole number of seconds, not {text:?}")]
    NotSeconds {
        /// The file.
        path: PathBuf,
        /// What it holds.
        text: String,
    },
}

impl OffsetFileClock {
    /// A clock reading its offset from `path`, which must hold a whole
    /// number of seconds now (checked here, so that a bad file stops the
    /// start rather than being ignored).
    pub fn new(path: &Path) -> Result<OffsetFileClock, OffsetFileError> {
        let clock = OffsetFileClock {
            path: path.to_path_buf(),
        };
        clock.offset()?;
        Ok(clock)
    }

    /// The offset the file holds now.
    pub fn offset(&self) -> Result<Duration, OffsetFileError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| OffsetFileError::Read {
            path: self.path.clone(),
            source,
        })?;
        text.trim()
            .parse::<i64>()
            .map(Duration::seconds)
            .map_err(|_| OffsetFileError::NotSeconds {
                path: self.path.clone(),
                text: text.trim().to_string(),
            })
    }
}

impl Clock for OffsetFileClock {
    fn now(&self) -> OffsetDateTime {
        // A file being rewritten can be read empty for a moment: the last
        // good offset would be better, but a test writes it whole with one
        // rename, and an unreadable file falls back to the system time
        // with a warning rather than stopping the portal.
        let offset = self.offset().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "clock offset file unreadable; using the system time");
            Duration::ZERO
        });
        OffsetDateTime::now_utc() + offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_file_clock_follows_the_file_at_every_look() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offset");
        assert!(matches!(
            OffsetFileClock::new(&path),
            Err(OffsetFileError::Read { .. })
        ));
        std::fs::write(&path, "soon").unwrap();
        assert!(matches!(
            OffsetFileClock::new(&path),
            Err(OffsetFileError::NotSeconds { .. })
        ));
        std::fs::write(&path, "0\n").unwrap();
        let clock = OffsetFileClock::new(&path).unwrap();
        let before = clock.now();
        std::fs::write(&path, "2678400").unwrap();
        let later = clock.now() - before;
        assert!(
            later >= Duration::days(31) && later < Duration::days(31) + Duration::minutes(1),
            "{later}"
        );
    }
}
