//! Attach's check of a table against its mapping: every mapped column
//! exists with a type that can hold what it is for (filling in the kinds),
//! the id is unique, the vectors' dimension and distance, the points in
//! scope, a tag path some point has, and the indexes the tag and scope
//! filters need (created when asked, else named in warnings). Writes
//! nothing to the table but those indexes.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::catalog::{self, Column, Index};
use super::sql::{Binds, JsonRead, TableName, Target, ident, json_path};
use super::{catalog_error, classify, count_of, encode_error, invalid, mapping_of};
use crate::domain::{CollectionSpec, Field, FieldKind, IdKind, Mapping};
use crate::vector_store::{Inspection, Result};

/// What a field is for, and so which kinds it may have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Tags,
    Text,
    Source,
    Scope,
    Timestamp,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Tags => "tags",
            Self::Text => "text",
            Self::Source => "source",
            Self::Scope => "scope",
            Self::Timestamp => "timestamp",
        }
    }

    fn allows(self, kind: FieldKind) -> bool {
        use FieldKind::{Int, Json, Jsonb, Text, TextArray, Timestamp, Uuid};
        match self {
            Self::Tags => matches!(kind, Text | TextArray | Json | Jsonb),
            Self::Text => matches!(kind, Text | Json | Jsonb),
            Self::Source | Self::Scope => matches!(kind, Text | Json | Jsonb | Uuid | Int),
            Self::Timestamp => matches!(kind, Timestamp | Text | Json | Jsonb | Int),
        }
    }

    fn types(self) -> &'static str {
        match self {
            Self::Tags => "text, varchar, text[], varchar[], json or jsonb",
            Self::Text => "text, varchar, json or jsonb",
            Self::Source | Self::Scope => "text, varchar, uuid, an integer, json or jsonb",
            Self::Timestamp => "timestamptz, timestamp, date, text, varchar, an integer, json or jsonb",
        }
    }
}

pub(super) async fn inspect(pool: &PgPool, spec: &CollectionSpec, create_indexes: bool) -> Result<Inspection> {
    let mut mapping = mapping_of(spec)?.clone();
    let table = TableName::parse(&spec.backend_name).map_err(|m| invalid("target", m))?;
    let oid = catalog::table_oid(pool, &table)
        .await
        .map_err(catalog_error)?
        .ok_or_else(|| invalid("target", format!("table `{}` does not exist", spec.backend_name)))?;
    // Checked here, not found out by the first erasure (which could count
    // the points and then fail to delete them, attempt after attempt).
    let missing: Vec<&str> = match catalog::privileges(pool, oid).await.map_err(catalog_error)? {
        (true, true) => Vec::new(),
        (select, delete) => [(!select, "SELECT"), (!delete, "DELETE")].iter().filter(|(m, _)| *m).map(|(_, p)| *p).collect(),
    };
    if !missing.is_empty() {
        return Err(crate::vector_store::VectorStoreError::Unsupported(format!(
            "Lethe's database role may not {} in `{}`: an erasure reads and deletes its points; grant it with \
             GRANT SELECT, DELETE ON {} TO <Lethe's role>",
            missing.join(" or "),
            spec.backend_name,
            table.quoted()
        )));
    }
    let cols = catalog::columns(pool, oid).await.map_err(catalog_error)?;
    let indexes = catalog::indexes(pool, oid).await.map_err(catalog_error)?;
    let name = &spec.backend_name;

    let id = column(&cols, "id", &mapping.id_column, name)?;
    mapping.id_kind = match id.kind() {
        Some(FieldKind::Uuid) => IdKind::Uuid,
        Some(FieldKind::Text) => IdKind::Text,
        Some(FieldKind::Int) => IdKind::Int,
        _ => {
            return Err(invalid(
                "id",
                format!(
                    "column `{}` is {}; an id must be uuid, text, varchar or an integer",
                    mapping.id_column,
                    id.type_name()
                ),
            ));
        }
    };
    if !indexes.iter().any(|i| i.makes_unique(id.attnum)) {
        return Err(invalid(
            "id",
            format!("column `{}` is neither the primary key nor unique: an id must name one point", mapping.id_column),
        ));
    }
    let vector = column(&cols, "vector", &mapping.vector, name)?.clone();
    if vector.typname != "vector" {
        return Err(invalid(
            "vector",
            format!("column `{}` is {}, not a pgvector `vector`", mapping.vector, vector.type_name()),
        ));
    }
    check_field(&mut mapping.tags, Role::Tags, &cols, name)?;
    if let Some(f) = mapping.text.as_mut() {
        check_field(f, Role::Text, &cols, name)?;
    }
    if let Some(f) = mapping.source.as_mut() {
        check_field(f, Role::Source, &cols, name)?;
    }
    if let Some(s) = mapping.scope.as_mut() {
        check_field(&mut s.field, Role::Scope, &cols, name)?;
        s.value = crate::domain::Scope::canonical_value(s.field.kind, &s.value).map_err(|m| invalid("scope", m))?;
    }
    if let Some(f) = mapping.timestamp.as_mut() {
        check_field(f, Role::Timestamp, &cols, name)?;
    }

    let tag_array_type = match cols.get(&mapping.tags.column) {
        Some(c) if c.typname == "_varchar" => "varchar[]",
        _ => "text[]",
    };
    // Tolerant: a row with a `\u0000` escape must not fail the checks.
    let t = Target { spec, mapping: &mapping, table: table.quoted(), tag_array_type, json: JsonRead::Tolerant };
    let points = count_in_scope(pool, &t).await?;
    let dimension = match usize::try_from(vector.typmod) {
        Ok(d) if d > 0 => d,
        _ => first_dimension(pool, &t).await?.ok_or_else(|| {
            invalid(
                "vector",
                format!(
                    "column `{}` is a `vector` without a dimension and no point has a vector to read it from: \
                 attach once the framework has written points",
                    mapping.vector
                ),
            )
        })?,
    };
    if points > 0 {
        check_present(pool, &t, &mapping.tags, Role::Tags).await?;
        for (f, role) in [
            (mapping.text.as_ref(), Role::Text),
            (mapping.source.as_ref(), Role::Source),
            (mapping.timestamp.as_ref(), Role::Timestamp),
        ] {
            if let Some(f) = f {
                check_present(pool, &t, f, role).await?;
            }
        }
    }
    let distance = indexes.iter().find_map(|i| i.distance(vector.attnum));
    let (warnings, created) = plan_indexes(pool, oid, &table, &mapping, &cols, indexes, create_indexes).await?;
    Ok(Inspection { mapping, dimension, distance, points, warnings, created, store_names: Vec::new() })
}

fn column<'c>(cols: &'c HashMap<String, Column>, field: &str, name: &str, table: &str) -> Result<&'c Column> {
    if name.is_empty() {
        return Err(invalid(field, "no column given"));
    }
    cols.get(name).ok_or_else(|| invalid(field, format!("table `{table}` has no column `{name}`")))
}

/// Checks a field against its column's type and fills in its kind.
fn check_field(field: &mut Field, role: Role, cols: &HashMap<String, Column>, table: &str) -> Result<()> {
    let what = role.name();
    let col = column(cols, what, &field.column, table)?;
    let kind = col.kind().filter(|k| role.allows(*k)).ok_or_else(|| {
        invalid(what, format!("column `{}` is {}; {what} must be {}", field.column, col.type_name(), role.types()))
    })?;
    let json = matches!(kind, FieldKind::Json | FieldKind::Jsonb);
    if !field.path.is_empty() && !json {
        return Err(invalid(
            what,
            format!(
                "column `{}` is {}, not json or jsonb: it has no path `{}`",
                field.column,
                col.type_name(),
                field.path.join(".")
            ),
        ));
    }
    if role == Role::Scope && json && field.path.is_empty() {
        return Err(invalid(
            what,
            format!("a scope in the {} column `{}` needs a path", col.type_name(), field.column),
        ));
    }
    if matches!(role, Role::Tags | Role::Scope) && !field.json_text_path.is_empty() {
        return Err(invalid(what, format!("{what} are matched by the database and cannot be read inside JSON text")));
    }
    field.kind = kind;
    Ok(())
}

async fn count_in_scope(pool: &PgPool, t: &Target<'_>) -> Result<u64> {
    let mut b = Binds::default();
    let scope = t.scope(&mut b).map_err(|m| invalid("scope", m))?;
    let sql = format!("SELECT count(*) FROM {} t WHERE {scope}", t.table);
    let n: i64 = sqlx::query_scalar_with(&sql, b.into_args().map_err(encode_error)?)
        .fetch_one(pool)
        .await
        .map_err(|e| classify(t.spec, e))?;
    Ok(count_of(n))
}

/// The dimension of the first vector in scope (LangChain's older table
/// declares `vector` without one).
async fn first_dimension(pool: &PgPool, t: &Target<'_>) -> Result<Option<usize>> {
    let mut b = Binds::default();
    let scope = t.scope(&mut b).map_err(|m| invalid("scope", m))?;
    let v = t.col(&t.mapping.vector);
    let sql = format!("SELECT vector_dims({v}) FROM {} t WHERE {scope} AND {v} IS NOT NULL LIMIT 1", t.table);
    let d: Option<i32> = sqlx::query_scalar_with(&sql, b.into_args().map_err(encode_error)?)
        .fetch_optional(pool)
        .await
        .map_err(|e| classify(t.spec, e))?;
    Ok(d.and_then(|d| usize::try_from(d).ok()))
}

/// Fails when points exist in scope and none has the field (a mistyped
/// key would otherwise make every erasure count 0).
async fn check_present(pool: &PgPool, t: &Target<'_>, field: &Field, role: Role) -> Result<()> {
    let mut b = Binds::default();
    let scope = t.scope(&mut b).map_err(|m| invalid("scope", m))?;
    let col = t.col(&field.column);
    let json = t.as_jsonb(&col, field.kind);
    let has = match field.kind {
        // Strict: a key inside an array of objects is not where the tag
        // filter (containment at the path) looks.
        FieldKind::Json | FieldKind::Jsonb if !field.path.is_empty() => {
            format!("{json} @? {}::jsonpath", b.bind(format!("strict {}", json_path(&field.path))))
        }
        FieldKind::Json | FieldKind::Jsonb if role == Role::Tags => {
            format!("jsonb_typeof({json}) IN ('string', 'array')")
        }
        _ => format!("{col} IS NOT NULL"),
    };
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {} t WHERE {scope} AND {has})", t.table);
    let found: bool = sqlx::query_scalar_with(&sql, b.into_args().map_err(encode_error)?)
        .fetch_one(pool)
        .await
        .map_err(|e| classify(t.spec, e))?;
    if found {
        return Ok(());
    }
    let holds =
        if role == Role::Tags && field.path.is_empty() && matches!(field.kind, FieldKind::Json | FieldKind::Jsonb) {
            " holding a string or an array (give the path to the tag inside the JSON)"
        } else {
            ""
        };
    let within = if t.mapping.scope.is_some() { " (within the scope)" } else { "" };
    Err(invalid(role.name(), format!("no point in the table{within} has `{}`{holds}", field.display())))
}

/// A filter that needs an index: what it is for and the statement.
struct Need {
    what: String,
    statement: String,
    column: String,
    kind: FieldKind,
}

async fn plan_indexes(
    pool: &PgPool,
    oid: sqlx::postgres::types::Oid,
    table: &TableName,
    mapping: &Mapping,
    cols: &HashMap<String, Column>,
    indexes: Vec<Index>,
    create: bool,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut needs: Vec<Need> = Vec::new();
    let mut fields = vec![(format!("the tag filter on `{}`", mapping.tags.display()), &mapping.tags)];
    if let Some(s) = &mapping.scope {
        fields.push((format!("the scope `{}`", s.field.display()), &s.field));
    }
    for (what, field) in fields {
        let Some(col) = cols.get(&field.column) else { continue };
        if indexes.iter().any(|i| i.serves(&field.column, col, field.kind)) {
            continue;
        }
        let statement = index_statement(table, &field.column, field.kind);
        if !needs.iter().any(|n| n.statement == statement) {
            needs.push(Need { what, statement, column: field.column.clone(), kind: field.kind });
        }
    }
    let mut warnings = Vec::new();
    let mut created = Vec::new();
    if !create {
        for n in needs {
            warnings.push(format!(
                "no index serves {}: each erasure reads every row of the table; create one with: {}",
                n.what, n.statement
            ));
        }
        return Ok((warnings, created));
    }
    for n in needs {
        // Not in a transaction: CREATE INDEX CONCURRENTLY cannot run in one.
        if let Err(e) = sqlx::raw_sql(&n.statement).execute(pool).await {
            tracing::warn!(error.message = %e, statement = %n.statement, "creating an index on an attached table failed");
            let nul = e.as_database_error().and_then(|d| d.code()).as_deref() == Some("22P05");
            if nul {
                // A failed concurrent build leaves an invalid index that every
                // insert still maintains: the framework's next row with a
                // `\u0000` escape would fail on it. It is ours; drop it.
                let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {}", qualified_index(table, &n.column));
                if let Err(e) = sqlx::raw_sql(&drop).execute(pool).await {
                    tracing::warn!(error.message = %e, "dropping the failed index failed");
                }
                warnings.push(format!(
                    "no index serves {}: a row's json holds a \\u0000 escape, which jsonb (and so an index on the \
                     column as jsonb) cannot hold; each erasure reads every row of the table",
                    n.what
                ));
            } else {
                warnings.push(format!(
                    "could not create the index {} needs (Lethe's role may not own the table); run: {}",
                    n.what, n.statement
                ));
            }
            continue;
        }
        let now = catalog::indexes(pool, oid).await.map_err(catalog_error)?;
        let served = cols.get(&n.column).is_some_and(|c| now.iter().any(|i| i.serves(&n.column, c, n.kind)));
        let name = index_name(table, &n.column);
        if served {
            created.push(n.statement);
        } else if now.iter().any(|i| i.name == name) {
            // IF NOT EXISTS skipped it, or the concurrent build failed and left it invalid.
            warnings.push(format!(
                "an index named {} exists on the table but does not serve {}: drop it with DROP INDEX \
                 CONCURRENTLY {}, then run: {}",
                ident(&name),
                n.what,
                qualified_index(table, &n.column),
                n.statement
            ));
        } else {
            warnings.push(format!("the index {} needs was not created; run: {}", n.what, n.statement));
        }
    }
    Ok((warnings, created))
}

/// `CREATE INDEX CONCURRENTLY IF NOT EXISTS …` serving the filter
/// `sql::Target` writes on a column of `kind`.
fn index_statement(table: &TableName, column: &str, kind: FieldKind) -> String {
    let name = ident(&index_name(table, column));
    let col = ident(column);
    let using = match kind {
        FieldKind::Jsonb => format!("USING gin ({col} jsonb_path_ops)"),
        FieldKind::Json => format!("USING gin (({col}::jsonb) jsonb_path_ops)"),
        FieldKind::TextArray => format!("USING gin ({col})"),
        _ => format!("({col})"),
    };
    format!("CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {} {using}", table.quoted())
}

/// The index [`index_name`] names, qualified with the table's schema.
fn qualified_index(table: &TableName, column: &str) -> String {
    let name = ident(&index_name(table, column));
    match &table.schema {
        Some(schema) => format!("{}.{name}", ident(schema)),
        None => name,
    }
}

/// `<table>_<column>_lethe_idx`, shortened with a hash to Postgres's 63 bytes.
fn index_name(table: &TableName, column: &str) -> String {
    let base = format!("{}_{column}_lethe", table.name);
    if base.len() + 4 <= 63 {
        return format!("{base}_idx");
    }
    let hash = hex::encode(&Sha256::digest(base.as_bytes())[..4]);
    let mut cut = 50;
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hash}_idx", &base[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_fit_postgres_and_stay_distinct() {
        let t = TableName { schema: None, name: "langchain_pg_embedding".into() };
        assert_eq!(index_name(&t, "cmetadata"), "langchain_pg_embedding_cmetadata_lethe_idx");
        let long = TableName { schema: None, name: "x".repeat(60) };
        let (a, b) = (index_name(&long, "tags"), index_name(&long, "subjects"));
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
    }

    #[test]
    fn index_statements_serve_the_filters() {
        let t = TableName { schema: Some("rag".into()), name: "data_docs".into() };
        assert_eq!(
            index_statement(&t, "metadata_", FieldKind::Json),
            r#"CREATE INDEX CONCURRENTLY IF NOT EXISTS "data_docs_metadata__lethe_idx" ON "rag"."data_docs" USING gin (("metadata_"::jsonb) jsonb_path_ops)"#
        );
        assert!(index_statement(&t, "owner", FieldKind::Text).ends_with(r#"ON "rag"."data_docs" ("owner")"#));
    }
}
