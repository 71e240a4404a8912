//! Postgres stores: every SQL statement on Lethe's own tables lives in this
//! module's files (`tenant`, `lineage`, `jobs`, `log`). Functions take an
//! executor or a transaction; callers own transactions. No wire types here.

pub mod jobs;
pub mod lineage;
pub mod log;
pub mod reindex;
pub mod tenant;

/// A Postgres failure, classified: unavailable (retry later) or unexpected.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Unexpected(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                Self::Unavailable(e)
            }
            _ => Self::Unexpected(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Runs the embedded migrations.
///
/// # Errors
/// When a migration fails.
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}
