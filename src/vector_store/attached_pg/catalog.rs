//! What pg_catalog says about an attached table: whether it exists, its
//! columns and their types, its indexes (which serve the tag filter, which
//! say the vectors' distance, which make the id unique), and whether
//! Lethe's role may vacuum it.

use std::collections::HashMap;

use sqlx::postgres::types::Oid;
use sqlx::{PgExecutor, PgPool};

use super::sql::{TableName, ident};
use crate::domain::{Distance, FieldKind};

/// A column of the table.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub attnum: i16,
    /// `pg_type.typname`: `text`, `varchar`, `_text`, `jsonb`, `vector`, …
    pub typname: String,
    /// The declared modifier (`vector(384)`: 384), -1 when none.
    pub typmod: i32,
}

impl Column {
    /// What a mapped field in this column is, by its type.
    pub fn kind(&self) -> Option<FieldKind> {
        Some(match self.typname.as_str() {
            "text" | "varchar" => FieldKind::Text,
            "_text" | "_varchar" => FieldKind::TextArray,
            "jsonb" => FieldKind::Jsonb,
            "json" => FieldKind::Json,
            "uuid" => FieldKind::Uuid,
            "int2" | "int4" | "int8" => FieldKind::Int,
            "timestamptz" | "timestamp" | "date" => FieldKind::Timestamp,
            _ => return None,
        })
    }

    /// The type as a person reads it.
    pub fn type_name(&self) -> String {
        match self.typname.strip_prefix('_') {
            Some(elem) => format!("{elem}[]"),
            None => self.typname.clone(),
        }
    }
}

/// An index of the table.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Index {
    pub name: String,
    /// Access method: `btree`, `gin`, `hnsw`, `ivfflat`, …
    pub am: String,
    /// The first key column's number; 0 for an expression.
    pub key0: i16,
    /// The first key's operator class.
    pub opclass: Option<String>,
    /// The first key as `pg_get_indexdef` writes it (`((metadata_)::jsonb)`).
    pub expr0: String,
    /// Columns an expression key reads.
    pub expr_columns: Vec<i16>,
    pub partial: bool,
    pub valid: bool,
    pub unique: bool,
    pub keys: i16,
}

impl Index {
    /// Whether the index is usable for every row (valid, not partial) with
    /// column `attnum` as its first key.
    fn on_column(&self, attnum: i16) -> bool {
        self.valid && !self.partial && self.key0 == attnum
    }

    /// Whether the index serves a tag or scope filter on the column, as
    /// `sql::Target` writes it (containment for JSON, `=`/`&&` otherwise).
    pub fn serves(&self, column: &str, col: &Column, kind: FieldKind) -> bool {
        let jsonb_gin = self.am == "gin" && matches!(self.opclass.as_deref(), Some("jsonb_ops" | "jsonb_path_ops"));
        match kind {
            FieldKind::Jsonb => jsonb_gin && self.on_column(col.attnum),
            FieldKind::Json => {
                let cast = [format!("(({column})::jsonb)"), format!("(({})::jsonb)", ident(column))];
                jsonb_gin && self.valid && !self.partial && self.key0 == 0 && cast.contains(&self.expr0)
            }
            FieldKind::TextArray => self.am == "gin" && self.on_column(col.attnum),
            FieldKind::Text | FieldKind::Uuid | FieldKind::Int => self.am == "btree" && self.on_column(col.attnum),
            // A timestamp is read, never filtered on.
            FieldKind::Unknown | FieldKind::Payload | FieldKind::Timestamp => false,
        }
    }

    /// Whether the index makes column `attnum` unique.
    pub fn makes_unique(&self, attnum: i16) -> bool {
        self.unique && self.keys == 1 && self.on_column(attnum)
    }

    /// The distance of a pgvector index on column `attnum` (directly or in an
    /// expression such as `(embedding::vector(384))`).
    pub fn distance(&self, attnum: i16) -> Option<Distance> {
        let on = self.key0 == attnum || (self.key0 == 0 && self.expr_columns.contains(&attnum));
        if !self.valid || !on || !matches!(self.am.as_str(), "hnsw" | "ivfflat") {
            return None;
        }
        let opclass = self.opclass.as_deref()?;
        if opclass.ends_with("_cosine_ops") {
            Some(Distance::Cosine)
        } else if opclass.ends_with("_l2_ops") {
            Some(Distance::Euclid)
        } else if opclass.ends_with("_ip_ops") {
            Some(Distance::Dot)
        } else {
            None
        }
    }
}

/// The table's oid, when `table` names a table (not a view).
pub(super) async fn table_oid(db: impl PgExecutor<'_>, table: &TableName) -> Result<Option<Oid>, sqlx::Error> {
    sqlx::query_scalar("SELECT c.oid FROM pg_class c WHERE c.oid = to_regclass($1)::oid AND c.relkind IN ('r', 'p')")
        .bind(table.quoted())
        .fetch_optional(db)
        .await
}

/// Whether Lethe's role may read and delete the table's rows (SELECT,
/// DELETE), as an erasure must.
pub(super) async fn privileges(db: impl PgExecutor<'_>, oid: Oid) -> Result<(bool, bool), sqlx::Error> {
    sqlx::query_as("SELECT has_table_privilege($1, 'SELECT'), has_table_privilege($1, 'DELETE')").bind(oid).fetch_one(db).await
}

/// The table's columns by name.
pub(super) async fn columns(db: impl PgExecutor<'_>, oid: Oid) -> Result<HashMap<String, Column>, sqlx::Error> {
    let found: Vec<(String, i16, String, i32)> = sqlx::query_as(
        r#"
        SELECT a.attname::text, a.attnum, t.typname::text, a.atttypmod
        FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
        "#,
    )
    .bind(oid)
    .fetch_all(db)
    .await?;
    Ok(found.into_iter().map(|(name, attnum, typname, typmod)| (name, Column { attnum, typname, typmod })).collect())
}

/// The type name of one column (`None` when the table or column is gone).
pub(super) async fn column_type(
    db: impl PgExecutor<'_>,
    table: &TableName,
    column: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        r#"
        SELECT t.typname::text
        FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped
        "#,
    )
    .bind(table.quoted())
    .bind(column)
    .fetch_optional(db)
    .await
}

/// The table's indexes.
pub(super) async fn indexes(db: impl PgExecutor<'_>, oid: Oid) -> Result<Vec<Index>, sqlx::Error> {
    // Expression keys depend on the columns they read (pg_depend); plain
    // keys are `indkey`.
    sqlx::query_as(
        r#"
        SELECT c.relname::text AS name, am.amname::text AS am, i.indkey[0] AS key0,
               opc.opcname::text AS opclass, pg_get_indexdef(i.indexrelid, 1, false) AS expr0,
               ARRAY(SELECT d.refobjsubid::int2 FROM pg_depend d
                     WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                       AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid
                       AND d.refobjsubid > 0) AS expr_columns,
               i.indpred IS NOT NULL AS partial, i.indisvalid AS valid, i.indisunique AS "unique",
               i.indnkeyatts AS keys
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_am am ON am.oid = c.relam
        LEFT JOIN pg_opclass opc ON opc.oid = i.indclass[0]
        WHERE i.indrelid = $1
        ORDER BY i.indexrelid
        "#,
    )
    .bind(oid)
    .fetch_all(db)
    .await
}

/// Whether Lethe's role may VACUUM the table (its owner, a member of the
/// owning role, the database's owner, or a superuser); true when the table
/// is gone (the VACUUM then says so).
pub(super) async fn can_vacuum(pool: &PgPool, quoted_table: &str) -> Result<bool, sqlx::Error> {
    let allowed: Option<bool> = sqlx::query_scalar(
        r#"
        SELECT pg_has_role(current_user, c.relowner, 'MEMBER')
            OR (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
            OR pg_has_role(current_user, (SELECT d.datdba FROM pg_database d WHERE d.datname = current_database()), 'MEMBER')
        FROM pg_class c
        WHERE c.oid = to_regclass($1)
        "#,
    )
    .bind(quoted_table)
    .fetch_optional(pool)
    .await?;
    Ok(allowed.unwrap_or(true))
}
