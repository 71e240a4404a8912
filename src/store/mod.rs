//! Postgres stores: every SQL statement on Lethe's own tables lives in this
//! module's files (`tenant`, `lineage`, `holds`, `jobs`, `progress`, `lease`, `log`, `reindex`, `rewrite`, `role`). Functions take an
//! executor or a transaction; callers own transactions. No wire types here.

pub mod attach;
pub mod collections;
pub mod export;
pub mod holds;
pub mod jobs;
pub mod lease;
pub mod ledger;
pub mod lineage;
pub mod log;
pub mod metrics;
pub mod plans;
pub mod probes;
pub mod progress;
pub mod reconcile;
pub mod reindex;
pub mod retention;
pub mod rewrite;
pub mod role;
pub mod subjects;
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
        let e = without_row_data(e);
        let conflict = is_conflict(&e);
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                Self::Unavailable(e)
            }
            _ if conflict => Self::Unavailable(e),
            _ => Self::Unexpected(e),
        }
    }
}

/// A database error as Lethe keeps it: PostgreSQL's code, primary message,
/// constraint and table, without the parts it fills from the rows a statement
/// touched: DETAIL (`Key (email)=(…) already exists`), CONTEXT/WHERE (a json
/// value's text around a `\u0000` escape), HINT, and the position in the
/// statement. A database error reaches the service log (`error.cause_chain`
/// prints the whole chain), and those parts can quote a person's text, which
/// the log must not keep after their erasure. The primary message names
/// types, constraints and relations, not values, for the errors Lethe's
/// statements meet; one that casts a text to a type on the server (`$1::json`,
/// `::uuid`) can fail with the value in the message (`invalid input syntax
/// for type uuid: "…"`), and none of those casts a person's text.
#[derive(Debug)]
pub(crate) struct DatabaseFailure {
    code: Option<String>,
    message: String,
    constraint: Option<String>,
    table: Option<String>,
    kind: sqlx::error::ErrorKind,
}

impl std::fmt::Display for DatabaseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} (SQLSTATE {code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DatabaseFailure {}

impl sqlx::error::DatabaseError for DatabaseFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.code.as_deref().map(std::borrow::Cow::Borrowed)
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn constraint(&self) -> Option<&str> {
        self.constraint.as_deref()
    }

    fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        match self.kind {
            sqlx::error::ErrorKind::UniqueViolation => sqlx::error::ErrorKind::UniqueViolation,
            sqlx::error::ErrorKind::ForeignKeyViolation => sqlx::error::ErrorKind::ForeignKeyViolation,
            sqlx::error::ErrorKind::NotNullViolation => sqlx::error::ErrorKind::NotNullViolation,
            sqlx::error::ErrorKind::CheckViolation => sqlx::error::ErrorKind::CheckViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

/// The one place where a database error loses what PostgreSQL quoted of
/// rows (see [`DatabaseFailure`]); every other error passes unchanged. Every
/// sqlx error of Lethe's own tables (`StoreError::from`) and of the vector
/// stores on PostgreSQL goes through it.
pub(crate) fn without_row_data(e: sqlx::Error) -> sqlx::Error {
    match e {
        sqlx::Error::Database(db) => {
            if db.try_downcast_ref::<DatabaseFailure>().is_some() {
                return sqlx::Error::Database(db);
            }
            sqlx::Error::Database(Box::new(DatabaseFailure {
                code: db.code().map(|c| c.into_owned()),
                message: db.message().to_owned(),
                constraint: db.constraint().map(str::to_owned),
                table: db.table().map(str::to_owned),
                kind: db.kind(),
            }))
        }
        other => other,
    }
}

/// Whether PostgreSQL said "try again", not "this is wrong": the
/// transaction was rolled back for a conflict (a serialization failure
/// 40001, a deadlock's victim 40P01; not the rest of class 40, such as a
/// deferred constraint failing at commit), a lock was not available, the
/// server has too many connections, ran out of shared memory (its lock
/// table full: 53200) or is shutting down or starting up.
/// The vector stores on PostgreSQL classify their errors with it too.
pub(crate) fn is_conflict(e: &sqlx::Error) -> bool {
    let transient = |code: &str| matches!(code, "53200" | "53300" | "55P03" | "57P01" | "57P02" | "57P03");
    is_rolled_back_for_conflict(e) || matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|code| transient(&code)))
}

/// Of [`is_conflict`], the transaction rolled back for a conflict with
/// another one (a serialization failure 40001, a deadlock's victim 40P01):
/// the same work again at once is the remedy.
pub(crate) fn is_rolled_back_for_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|code| matches!(code.as_ref(), "40001" | "40P01")))
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A round trip to the database (health).
///
/// # Errors
/// When the database does not answer.
pub async fn ping(pool: &sqlx::PgPool) -> Result<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

/// Runs the embedded migrations.
///
/// # Errors
/// When a migration fails.
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        // A migration's statement failing on existing rows: as every other
        // database error, without what PostgreSQL quoted of them.
        sqlx::migrate::MigrateError::Execute(e) => sqlx::migrate::MigrateError::Execute(without_row_data(e)),
        other => other,
    })
}

/// The embedded migrations (also the list of Lethe's own tables, which
/// Attach refuses).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// SQL for "`column` after the cursor `param` (a nullable uuid; every
/// row when NULL)" that a generic plan runs as an index range (the workers'
/// pool plans generically, `startup::worker_pool`): not `param IS NULL OR
/// column > param`, which it can only filter, from the first row on every
/// page. `>=` from the nil UUID, not `>`: it is a point id a client may
/// choose.
pub(crate) fn after_cursor(column: &str, param: &str) -> String {
    format!("{column} >= coalesce({param}, '00000000-0000-0000-0000-000000000000'::uuid) AND {column} IS DISTINCT FROM {param}")
}

/// How long a `VACUUM FULL` waits for its table's lock. It asks for an
/// exclusive lock, and every statement on the table after it queues
/// behind it while it waits: a long transaction holding the table (a
/// stalled export, a session left open) would stall every write to it for
/// as long. Past this it fails with `55P03`, read as unavailable: the
/// stage is retried later, with backoff, and the writes go on meanwhile.
pub const VACUUM_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs a `VACUUM` statement on a connection of its own with
/// [`VACUUM_LOCK_TIMEOUT`] as its lock timeout (reset before the connection
/// goes back to the pool).
///
/// # Errors
/// `55P03` when the lock was not granted in time; database failures.
pub async fn vacuum_bounded(pool: &sqlx::PgPool, sql: &str) -> Result<(), sqlx::Error> {
    let set = format!("SET lock_timeout = '{}ms'", VACUUM_LOCK_TIMEOUT.as_millis());
    let mut conn = pool.acquire().await?;
    sqlx::query(&set).execute(&mut *conn).await?;
    let done = sqlx::query(sql).execute(&mut *conn).await.map(|_| ());
    let reset = sqlx::query("RESET lock_timeout").execute(&mut *conn).await.map(|_| ());
    if reset.is_err() {
        // Not back into the pool with the timeout set.
        drop(conn.detach());
    }
    done.and(reset)
}

/// Waits until no other session of the cluster holds a snapshot or a
/// transaction older than now, so that a following `VACUUM FULL` can drop
/// (not copy) the rows deleted before. Sessions in other databases count too:
/// an open transaction anywhere in the cluster keeps dead rows "not yet
/// removable" (seen on PostgreSQL 16). Returns the pid of a session still in the way after
/// `timeout`, or None when the way is clear.
///
/// # Errors
/// Database failures.
pub async fn wait_for_older_snapshots(pool: &sqlx::PgPool, timeout: std::time::Duration) -> Result<Option<i32>> {
    let mut conn = pool.acquire().await?;
    // The next transaction id: every row deleted before now was deleted by
    // an older one. (Our own snapshot's xmin would not do: it may be as old as
    // the oldest transaction still running, which must be waited for too.)
    let target: String = sqlx::query_scalar(
        "SELECT (txid_snapshot_xmax(txid_current_snapshot()) % 4294967296)::text",
    )
    .fetch_one(&mut *conn)
    .await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let blocker: Option<i32> = sqlx::query_scalar(
            r#"
            SELECT pid FROM pg_stat_activity
            WHERE pid <> pg_backend_pid()
              -- lazy VACUUM never holds the horizon back. A role without
              -- pg_read_all_stats sees other roles' xmin but not their
              -- backend_type or query (NULL): such a session counts.
              AND NOT coalesce(backend_type = 'autovacuum worker' AND query NOT ILIKE '%analyze%', false)
              AND (age(backend_xmin) > age($1::xid) OR age(backend_xid) > age($1::xid))
            LIMIT 1
            "#,
        )
        .bind(&target)
        .fetch_optional(&mut *conn)
        .await?;
        if blocker.is_none() || tokio::time::Instant::now() >= deadline {
            return Ok(blocker);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
