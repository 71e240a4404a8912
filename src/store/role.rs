//! The service role: what the role in `database.url` may do when migrations
//! run as another role (`database.migration_url`). Applied after every
//! migration run, so tables that later migrations add are covered.
//!
//! The service role reads and writes Lethe's tables, appends to the deletion
//! log and the certificates but cannot change or remove them (no UPDATE,
//! DELETE or TRUNCATE; not their owner, so no `ALTER TABLE … DISABLE
//! TRIGGER` and no `DROP TRIGGER`), and runs no migration. It owns what it
//! must rewrite or create: the tables whose deleted rows guaranteed physical
//! erasure rewrites (`VACUUM FULL` needs the owner), and the pgvector
//! collection tables it creates at `CreateCollection` (CREATE on the schema).

use sqlx::PgPool;

use super::Result;
use super::rewrite::PERSONAL_TABLES;

/// Tables the service role may read and insert into, nothing else.
pub const APPEND_ONLY_TABLES: [&str; 3] = ["deletion_log", "certificates", "audit_upgrades"];

/// A role name as an SQL identifier, or None when it is not a plain name
/// (lower-case letters, digits, `_`; no quoting games).
fn identifier(role: &str) -> Option<String> {
    let plain = !role.is_empty()
        && role.len() <= 63
        && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && role.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    plain.then(|| format!("\"{role}\""))
}

/// Gives `role` exactly what the service needs on the database that `pool`
/// (the migration role, owner of Lethe's tables) is connected to. Idempotent.
///
/// # Errors
/// When the role name is not a plain identifier, the role does not exist,
/// or the connected role may not grant (it must own Lethe's tables and be a
/// member of `role`, so it can hand tables over).
pub async fn grant_service_role(pool: &PgPool, role: &str) -> Result<()> {
    let Some(r) = identifier(role) else {
        return Err(super::StoreError::Unexpected(sqlx::Error::Configuration(
            format!("the service role `{role}` is not a plain lower-case SQL name").into(),
        )));
    };
    let append_only = APPEND_ONLY_TABLES.join(", ");
    let mut statements = vec![
        format!("GRANT USAGE, CREATE ON SCHEMA public TO {r}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}"),
        format!("REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {append_only} FROM {r}"),
        format!("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _sqlx_migrations FROM {r}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}"),
    ];
    statements.extend(PERSONAL_TABLES.iter().map(|t| format!("ALTER TABLE {t} OWNER TO {r}")));
    // Collection tables created before the service had a role of its own.
    let collection_tables: Vec<String> = sqlx::query_scalar(
        r#"
        SELECT tablename FROM pg_tables
        WHERE schemaname = 'public' AND tablename ~ '^lv_[0-9a-f]{32}' AND tableowner <> $1
        "#,
    )
    .bind(role)
    .fetch_all(pool)
    .await?;
    statements.extend(collection_tables.iter().map(|t| format!("ALTER TABLE \"{t}\" OWNER TO {r}")));
    let mut tx = pool.begin().await?;
    for statement in statements {
        sqlx::raw_sql(&statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether the connected role could alter the deletion log or its trigger:
/// superuser, or the owner of `deletion_log` (or a member of the owner).
///
/// # Errors
/// Database failures.
pub async fn can_alter_log(ex: impl sqlx::PgExecutor<'_>) -> Result<bool> {
    Ok(sqlx::query_scalar(
        r#"
        SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
            OR coalesce((SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class
                         WHERE relname = 'deletion_log' AND relnamespace = 'public'::regnamespace), false)
        "#,
    )
    .fetch_one(ex)
    .await?)
}

/// Tables among `tables` that the connected role may not `VACUUM`: neither
/// their owner (or a member of it), nor superuser, nor the database's owner.
/// `VACUUM` skips such a table with a warning instead of failing.
///
/// # Errors
/// Database failures.
pub async fn not_vacuumable(ex: impl sqlx::PgExecutor<'_>, tables: &[&str]) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        r#"
        SELECT c.relname::text FROM pg_class c
        WHERE c.relname = ANY($1) AND c.relnamespace = 'public'::regnamespace
          AND NOT pg_has_role(current_user, c.relowner, 'USAGE')
          AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
          AND NOT pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE')
        "#,
    )
    .bind(tables)
    .fetch_all(ex)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_role_names_are_accepted() {
        assert_eq!(identifier("lethe_service").as_deref(), Some("\"lethe_service\""));
        for bad in ["", "Lethe", "a\"b", "x; DROP TABLE deletion_log", "1abc", &"a".repeat(64)] {
            assert!(identifier(bad).is_none(), "{bad}");
        }
    }
}
