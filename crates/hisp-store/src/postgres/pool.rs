//! The pool of connections to the database.

use std::time::Duration;

use postgres_openssl::MakeTlsConnector;
use r2d2::PooledConnection;
use r2d2_postgres::PostgresConnectionManager;

use super::url::PostgresUrl;
use super::{migrations, tls};
use crate::error::{DatabaseErrorKind, StoreError};
use crate::migration::MigrationReport;

/// The pool's connection manager.
pub(crate) type Manager = PostgresConnectionManager<MakeTlsConnector>;

/// A pooled connection, returned to the pool when dropped.
pub(crate) type Connection = PooledConnection<Manager>;

/// How long making one connection may take when the URL does not say
/// (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a caller waits for a free connection (all of them in use, or
/// the server unreachable) before the call fails as a lost connection.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a dedicated connection is idle before TCP keepalives start.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// Makes connections outside the pool (see
/// [`PostgresPool::dedicated_connector`]).
#[derive(Clone)]
pub(crate) struct Connector {
    config: ::postgres::Config,
    tls: MakeTlsConnector,
}

impl Connector {
    /// A new connection.
    pub(crate) fn connect(&self) -> Result<::postgres::Client, StoreError> {
        self.config
            .connect(self.tls.clone())
            .map_err(StoreError::postgres("connecting to the database"))
    }
}

/// The default `[store] pool_size`: four connections per processor core,
/// at least 8, like the queue engine's default concurrency, so that its
/// workers do not wait for one another's connections.
pub fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores.saturating_mul(4))
        .unwrap_or(u32::MAX)
        .max(8)
}

/// Connections to one PostgreSQL database, at most `size` open at once,
/// each checked before it is handed out (a connection the server closed is
/// replaced, not used).
pub struct PostgresPool {
    pool: r2d2::Pool<Manager>,
    url: PostgresUrl,
    /// How every connection is made (password and tag included), for the
    /// store's connection of its own outside the pool.
    config: ::postgres::Config,
    tls: MakeTlsConnector,
}

impl std::fmt::Debug for PostgresPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresPool")
            .field("url", &self.url.as_str())
            .field("size", &self.pool.max_size())
            .finish_non_exhaustive()
    }
}

impl PostgresPool {
    /// Opens a pool of at most `size` connections to the database `url`
    /// names, logging in with `password` when given (from the environment
    /// or a file; never from the URL), with TLS as the URL's `sslmode`
    /// asks. One connection is made at once, so that an unreachable server,
    /// a refused login or a failed TLS check is the error of this call.
    pub fn open(
        url: &PostgresUrl,
        password: Option<&str>,
        size: u32,
    ) -> Result<PostgresPool, StoreError> {
        PostgresPool::open_tagged(url, password, size, None)
    }

    /// [`open`](Self::open), every connection's session carrying
    /// `hisp.store = tag` (a run-time parameter set at connection start),
    /// which the schema's triggers read to tell one store's changes from
    /// another's. `tag` is made of ASCII letters, digits and `-`.
    pub(crate) fn open_tagged(
        url: &PostgresUrl,
        password: Option<&str>,
        size: u32,
        tag: Option<&str>,
    ) -> Result<PostgresPool, StoreError> {
        if size == 0 {
            return Err(StoreError::Invalid {
                what: "pool size",
                value: "0".into(),
                reason: "a pool needs at least one connection".into(),
            });
        }
        let mut config = url.config().clone();
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name("hisp");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if let Some(tag) = tag {
            debug_assert!(tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            let options = match config.get_options() {
                Some(o) if !o.is_empty() => format!("{o} -c hisp.store={tag}"),
                _ => format!("-c hisp.store={tag}"),
            };
            config.options(&options);
        }
        let tls = tls::connector(url)?;
        drop(
            config
                .connect(tls.clone())
                .map_err(StoreError::postgres("connecting to the database"))?,
        );
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .build_unchecked(PostgresConnectionManager::new(config.clone(), tls.clone()));
        Ok(PostgresPool {
            pool,
            url: url.clone(),
            config,
            tls,
        })
    }

    /// The database's URL.
    pub fn url(&self) -> &PostgresUrl {
        &self.url
    }

    /// The most connections the pool keeps open.
    pub fn size(&self) -> u32 {
        self.pool.max_size()
    }

    /// Brings the schema to [`SCHEMA_VERSION`](super::SCHEMA_VERSION) in one
    /// transaction, holding a transaction-level advisory lock so that
    /// instances starting together migrate once; a database from a newer
    /// hisp, or whose history does not fit, is refused untouched.
    pub fn migrate(&self) -> Result<MigrationReport, StoreError> {
        migrations::migrate(&mut *self.connection()?, self.url.as_str())
    }

    /// The schema version of the database (0 before the first migration).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        migrations::version(&mut *self.connection()?)
    }

    /// A new connection outside the pool, made as the pool's are (the
    /// store's listener for other stores' notifications).
    pub(crate) fn dedicated(&self) -> Result<::postgres::Client, StoreError> {
        self.dedicated_connector().connect()
    }

    /// What makes [`dedicated`](Self::dedicated) connections, kept by a
    /// holder that must connect again on its own. They send TCP keepalives,
    /// so a connection that lives idle for the process's life is not
    /// dropped silently by a firewall, and a dead peer is noticed.
    pub(crate) fn dedicated_connector(&self) -> Connector {
        let mut config = self.config.clone();
        config.keepalives(true);
        config.keepalives_idle(KEEPALIVE_IDLE);
        Connector {
            config,
            tls: self.tls.clone(),
        }
    }

    /// A connection from the pool; [`DatabaseErrorKind::ConnectionLost`]
    /// (retryable) when none could be had in time.
    pub(crate) fn connection(&self) -> Result<Connection, StoreError> {
        self.pool.get().map_err(|e| StoreError::Database {
            context: "taking a connection from the pool",
            kind: DatabaseErrorKind::ConnectionLost,
            message: e.to_string(),
        })
    }
}
