//! Attaching stores that already exist (issue 13): a LangChain or
//! LlamaIndex store, or a hand-made pgvector table or Qdrant collection,
//! registered as a Lethe collection with a [`Mapping`], then adopted (lineage
//! built by a scan, [`worker`]) and erased from like any collection.
//!
//! What attaching promises: Lethe never alters an attached store except to
//! delete erased points, and to create the index its tag filter needs when
//! the request asks for it. The mapping is checked against the store before
//! anything is written (a missing column, a wrong type, a tag path that no
//! point has is `INVALID_ARGUMENT` and registers nothing).

pub mod presets;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use uuid::Uuid;

use self::presets::Preset;
use crate::context::Context;
use crate::domain::{
    Backend, CollectionName, CollectionSpec, Distance, Field, FieldKind, IdKind, Mapping, NativeId, Scope, Screening,
};
use crate::error::{LetheError, Result};
use crate::store::attach::{self as jobs, AttachRow};
use crate::store::{StoreError, lineage};

/// An Attach request, validated.
#[derive(Debug, Clone)]
pub struct AttachInput {
    pub name: CollectionName,
    pub backend: Backend,
    pub preset: Option<Preset>,
    /// The preset's target, or the table / Qdrant collection.
    pub target: String,
    /// The metadata key that holds the person (presets).
    pub tag_key: String,
    pub mapping: MappingInput,
    pub create_indexes: bool,
    pub distance: Option<Distance>,
    pub embedding_model: String,
    pub screening: Option<Screening>,
}

/// The mapping fields a request sets (with a preset: overrides).
#[derive(Debug, Clone, Default)]
pub struct MappingInput {
    pub id: Option<String>,
    pub vector: Option<String>,
    pub text: Option<Field>,
    pub source: Option<Field>,
    pub tags: Option<Field>,
    pub scope: Option<Scope>,
    pub timestamp: Option<Field>,
}

/// What Attach did.
#[derive(Debug, Clone)]
pub struct Attached {
    pub spec: CollectionSpec,
    pub job: AttachRow,
    pub warnings: Vec<String>,
    pub created: Vec<String>,
    pub already_attached: bool,
}

/// Registers an existing store and queues its adoption.
///
/// # Errors
/// `InvalidArgument` for a mapping the store does not match (nothing is
/// registered); `FailedPrecondition` `attach_not_allowed` for a store the
/// operator did not list or one of Lethe's own; `AlreadyExists` for a name
/// or store attached otherwise; backend failures.
pub async fn attach(ctx: &Context, tenant_id: Uuid, input: AttachInput) -> Result<Attached> {
    let (candidates, mut mapping) = requested_mapping(&input)?;
    ctx.stores.backend(input.backend)?;
    let backend_name = pick_backend_name(ctx, input.backend, &candidates).await?;
    check_allowed(ctx, input.backend, &backend_name)?;
    if input.preset == Some(Preset::LangchainPgvector) {
        resolve_langchain_scope(ctx, &mut mapping).await?;
    }

    if let Some(existing) = lineage::collection_by_name(&ctx.pool, tenant_id, input.name.as_str()).await? {
        return again(ctx, existing, input.backend, &backend_name, &mapping).await;
    }

    let provisional = CollectionSpec {
        collection_id: Uuid::new_v4(),
        tenant_id,
        name: input.name.clone(),
        backend: input.backend,
        backend_name: backend_name.clone(),
        dimension: 0,
        distance: input.distance.unwrap_or(Distance::Cosine),
        embedding_model: input.embedding_model.clone(),
        store_text: mapping.text.is_some(),
        retention_days: 0,
        screening: input.screening.unwrap_or(ctx.settings.ingest.screening),
        created_at: chrono::Utc::now(),
        mapping: Some(Arc::new(mapping)),
    };
    let attached_store = ctx.stores.get(&provisional)?;
    let mut inspection = attached_store.inspect(&provisional, input.create_indexes).await?;
    // An alias is its collection: one of Lethe's own reached by another name
    // is still Lethe's own.
    if let Some(own) = inspection.store_names.iter().find(|n| own_qdrant_collection(ctx, n)) {
        return Err(LetheError::precondition(
            "attach_not_allowed",
            format!("`{backend_name}` reaches `{own}`, one of Lethe's own collections"),
        ));
    }
    if input.distance.is_none() && inspection.distance.is_none() {
        inspection.warnings.push(
            "the store does not say how its vectors compare (no vector index, or a distance Lethe does not use): \
             cosine is assumed for residual search; Attach with `distance` to say otherwise"
                .to_owned(),
        );
    }
    let spec = CollectionSpec {
        dimension: inspection.dimension,
        distance: input.distance.or(inspection.distance).unwrap_or(Distance::Cosine),
        mapping: Some(Arc::new(inspection.mapping)),
        ..provisional
    };
    // Two attachments of one store must not share a point: each tenant's
    // erasures and retention would delete the other's, and each adoption
    // would copy the other's texts into its lineage. Scopes are disjoint
    // only as different values of one field; an unscoped attachment takes
    // the whole store.
    // One store is one store however its name is spelled (`t`,
    // `public.t`, `"public"."t"`): compared by the table it resolves to. The
    // check and the insert are one step (two Attaches at once would both
    // pass the check).
    let scope = spec.mapping.as_deref().map(Mapping::scope_key).unwrap_or_default();
    let field = |key: &str| key.split_once('=').map(|(f, _)| f.to_owned());
    // An attachment stored before scope values were kept in one spelling
    // (`07` for 7): read as the field's type, which is this one's (the
    // same field of the same store).
    let kind = spec.mapping.as_deref().and_then(|m| m.scope.as_ref()).map(|s| s.field.kind).unwrap_or_default();
    let canonical = |key: &str| {
        key.split_once('=')
            .and_then(|(f, v)| Scope::canonical_value(kind, v).ok().map(|v| format!("{f}={v}")))
            .unwrap_or_else(|| key.to_owned())
    };
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    lineage::lock_attach(&mut *tx).await?;
    let mut overlaps = false;
    for (other_name, other) in lineage::attached_scopes(&mut *tx, spec.backend.as_str()).await? {
        let exact = other_name == backend_name;
        if !exact && !same_store(&mut tx, spec.backend, &backend_name, &other_name, &inspection.store_names).await? {
            continue;
        }
        // The same scope under another spelling is the same rows (the unique
        // index sees only the exact spelling); a LangChain collection by name
        // and one by uuid are the same rows when the name has that uuid.
        let disjoint = !other.is_empty()
            && !scope.is_empty()
            && field(&other) == field(&scope)
            && canonical(&other) != scope
            && !same_langchain_collection(ctx, &other, &scope).await?;
        overlaps |= !disjoint;
    }
    if overlaps {
        return Err(LetheError::AlreadyExists {
            message: format!(
                "`{backend_name}` is already attached with a scope that overlaps this one (possibly by another tenant): \
                 attachments of one store must each be scoped to another value of the same field"
            ),
        });
    }
    let inserted = lineage::insert_collection(&mut tx, &spec).await;
    let inserted = match inserted {
        Ok(s) => tx.commit().await.map(|()| s).map_err(StoreError::from),
        Err(e) => Err(e),
    };
    let stored = match inserted {
        Ok(s) => s,
        Err(StoreError::Unexpected(sqlx::Error::Database(db))) if db.is_unique_violation() => {
            return Err(LetheError::AlreadyExists {
                message: format!("`{backend_name}` is already attached (as another collection, possibly of another tenant)"),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if stored.collection_id != spec.collection_id {
        // Lost a race with an Attach of the same name.
        return again(ctx, stored, input.backend, &backend_name, spec.mapping.as_deref().unwrap_or(&empty_mapping())).await;
    }
    let job = jobs::ensure(&ctx.pool, tenant_id, stored.collection_id).await?;
    ctx.wake.adoption.notify_waiters();
    tracing::info!(collection = %stored.name, backend = %stored.backend, points = inspection.points, "store attached");
    Ok(Attached { spec: stored, job, warnings: inspection.warnings, created: inspection.created, already_attached: false })
}

/// Whether two attached names are one store: for pgvector, the same table
/// (by OID, read in the attach's transaction); for Qdrant, `b` is one of
/// `a`'s `names` (its collection and that collection's aliases, as the
/// inspection just listed them).
async fn same_store(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    backend: Backend,
    a: &str,
    b: &str,
    names: &[String],
) -> Result<bool> {
    if backend != Backend::Pgvector {
        return Ok(names.iter().any(|n| n == b));
    }
    let x = crate::vector_store::table_identity(&mut **tx, a).await?;
    let y = crate::vector_store::table_identity(&mut **tx, b).await?;
    Ok(x.is_some() && x == y)
}

/// Whether two scope keys of one field name the same LangChain collection,
/// one by its name (`collection_id=name:docs`) and one by the uuid that
/// name has now (attachments made before scopes followed the name).
async fn same_langchain_collection(ctx: &Context, a: &str, b: &str) -> Result<bool> {
    let value = |k: &str| k.split_once('=').map(|(_, v)| v.to_owned()).unwrap_or_default();
    let (a, b) = (value(a), value(b));
    let (name, uuid) = match (a.strip_prefix("name:"), b.strip_prefix("name:")) {
        (Some(name), None) => (name.to_owned(), b),
        (None, Some(name)) => (name.to_owned(), a),
        _ => return Ok(false),
    };
    // An error (two LangChain collections of that name) is the caller's to see,
    // not "different rows".
    let current = crate::vector_store::langchain_collection_uuid(&ctx.pool, &name).await?;
    Ok(current.is_some_and(|u| u.to_string() == uuid))
}

/// The adoption job of an attached collection.
///
/// # Errors
/// `NotFound` for an unknown name; `FailedPrecondition` for a collection Lethe created.
pub async fn job(ctx: &Context, tenant_id: Uuid, name: &CollectionName) -> Result<(CollectionSpec, AttachRow)> {
    let spec = crate::catalog::collection(ctx, tenant_id, name).await?;
    if !spec.is_attached() {
        return Err(not_attached(&spec));
    }
    let job = jobs::by_collection(&ctx.pool, tenant_id, spec.collection_id)
        .await?
        .ok_or_else(|| LetheError::NotFound(format!("adoption job of `{name}`")))?;
    Ok((spec, job))
}

/// `Track` of an attached collection: the pipeline names points its
/// framework wrote (by the store's own ids); Lethe reads their tags, source
/// and text from the store through the mapping and records them as the
/// adoption scan would. Returns what the write did and the accepted ids in
/// the store's form.
///
/// # Errors
/// `InvalidArgument` for an id that is not of the store's id type;
/// `FailedPrecondition` `point_not_found` for an id the store does not
/// hold (nothing is recorded); the write path's errors.
pub async fn track(
    ctx: &Context,
    spec: &CollectionSpec,
    ids: &[String],
    subjects: &[crate::ingest::SubjectInput],
) -> Result<(crate::ingest::WriteOutcome, Vec<String>)> {
    let Some(mapping) = spec.mapping.as_deref() else { return Err(not_attached(spec)) };
    let natives: Vec<NativeId> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| NativeId::parse_in(spec.backend, mapping.id_kind, s).map_err(|m| LetheError::invalid(format!("points[{i}].point_id"), m)))
        .collect::<Result<_>>()?;
    // Each id's key once (a text id's is a hash): (key, id).
    let keyed: Vec<(Uuid, &NativeId)> = natives.iter().map(|n| (n.key(spec.collection_id), n)).collect();
    let looked_up: Vec<(Uuid, String)> = keyed.iter().filter(|(_, n)| n.needs_lookup()).map(|(k, n)| (*k, n.as_string())).collect();
    // The store reads a text id's point through its lookup row: written
    // first, and forgotten again at the end unless lineage now stands
    // behind it (a failure, a missing point or a suppressed one keeps none).
    let added = jobs::record_point_ids(&ctx.pool, spec.collection_id, &looked_up).await?;
    let written = track_looked_up(ctx, spec, &keyed, subjects).await;
    if let Err(e) = jobs::forget_unlinked_point_ids(&ctx.pool, spec.tenant_id, spec.collection_id, &added).await {
        // Rare (the database failed just now); the next Track or DeletePoints
        // of these ids forgets them, and Reconcile's scan reads them as ids only.
        tracing::warn!(error.cause_chain = ?e, rows = added.len(), "lookup rows of text ids not forgotten");
    }
    let out = written?;
    let by_key: HashMap<Uuid, &NativeId> = keyed.iter().copied().collect();
    let shown: Vec<String> =
        out.point_ids.iter().map(|k| by_key.get(k).map_or_else(|| k.to_string(), |n| n.as_string())).collect();
    Ok((out, shown))
}

/// Track's reading and recording, once the lookup rows are written.
async fn track_looked_up(
    ctx: &Context,
    spec: &CollectionSpec,
    keyed: &[(Uuid, &NativeId)],
    subjects: &[crate::ingest::SubjectInput],
) -> Result<crate::ingest::WriteOutcome> {
    let keys: Vec<Uuid> = keyed.iter().map(|(k, _)| *k).collect();
    let found = ctx.stores.get(spec)?.retrieve(spec, &keys, false).await?;
    let present: HashSet<Uuid> = found.iter().map(|p| p.id).collect();
    // Named by its place in the request, not its value: a text id may hold
    // the person's address, and error texts travel through clients' logs.
    if let Some(i) = keyed.iter().position(|(k, _)| !present.contains(k)) {
        return Err(LetheError::precondition("point_not_found", format!("points[{i}] is not in `{}`", spec.backend_name)));
    }
    let text_ids: HashMap<Uuid, String> =
        keyed.iter().filter(|(_, n)| n.needs_lookup()).map(|(k, n)| (*k, n.as_string())).collect();
    let chunks = found
        .iter()
        .map(|p| {
            let mut chunk = worker::chunk_of(spec, p);
            chunk.native_id = text_ids.get(&p.id).cloned();
            chunk
        })
        .collect();
    crate::ingest::write(ctx, spec, chunks, subjects, crate::ingest::WriteMode::Track { verify_points: false }).await
}

pub fn not_attached(spec: &CollectionSpec) -> LetheError {
    LetheError::precondition("not_attached", format!("collection `{}` was created by Lethe, not attached", spec.name))
}

/// Attach of a name that exists: the same store and mapping is a no-op
/// (a failed adoption is queued again); anything else is a conflict.
async fn again(ctx: &Context, existing: CollectionSpec, backend: Backend, backend_name: &str, wanted: &Mapping) -> Result<Attached> {
    // A scope value as its field's type reads it (`+7` is the `7` stored),
    // on both sides: rows stored before values were kept in one spelling too.
    let kind = existing.mapping.as_deref().and_then(|m| m.scope.as_ref()).map(|s| s.field.kind).unwrap_or_default();
    let read = |m: &Mapping| {
        let mut m = comparable(m);
        if let Some(s) = m.scope.as_mut().filter(|s| s.named.is_none())
            && let Ok(v) = Scope::canonical_value(kind, &s.value)
        {
            s.value = v;
        }
        m
    };
    let same = existing.backend == backend
        && existing.backend_name == backend_name
        && existing.mapping.as_deref().is_some_and(|m| read(m) == read(wanted));
    if !same {
        return Err(LetheError::AlreadyExists {
            message: format!("collection `{}` exists with another store or mapping", existing.name),
        });
    }
    let mut job = jobs::ensure(&ctx.pool, existing.tenant_id, existing.collection_id).await?;
    if job.status == "failed" {
        if let Some(queued) = jobs::retry_failed(&ctx.pool, job.job_id).await? {
            job = queued;
        }
        ctx.wake.adoption.notify_waiters();
    }
    Ok(Attached { spec: existing, job, warnings: Vec::new(), created: Vec::new(), already_attached: true })
}

/// A mapping as requested: without what inspection fills in.
fn comparable(m: &Mapping) -> Mapping {
    let plain = |f: &Field| Field { kind: FieldKind::Unknown, ..f.clone() };
    Mapping {
        preset: m.preset.clone(),
        id_column: m.id_column.clone(),
        id_kind: IdKind::Uuid,
        vector: m.vector.clone(),
        text: m.text.as_ref().map(plain),
        source: m.source.as_ref().map(plain),
        tags: plain(&m.tags),
        // A named scope is the same whatever uuid its name had at attach.
        scope: m.scope.as_ref().map(|s| Scope {
            field: plain(&s.field),
            value: s.named.clone().unwrap_or_else(|| s.value.clone()),
            named: s.named.clone(),
        }),
        timestamp: m.timestamp.as_ref().map(plain),
    }
}

fn empty_mapping() -> Mapping {
    Mapping {
        preset: None,
        id_column: String::new(),
        id_kind: IdKind::Uuid,
        vector: String::new(),
        text: None,
        source: None,
        tags: Field::default(),
        scope: None,
        timestamp: None,
    }
}

/// The candidate backend names and the mapping a request asks for.
fn requested_mapping(input: &AttachInput) -> Result<(Vec<String>, Mapping)> {
    let m = &input.mapping;
    let (names, mut mapping) = match input.preset {
        Some(preset) => {
            if preset.backend() != input.backend {
                return Err(LetheError::invalid("backend", format!("preset `{}` is for {}", preset.as_str(), preset.backend())));
            }
            let t = presets::resolve(preset, &input.target, &input.tag_key)?;
            (t.backend_names, t.mapping)
        }
        None => {
            let Some(tags) = m.tags.clone() else {
                return Err(LetheError::invalid("mapping.tags", "is required without a preset"));
            };
            let needs_columns = input.backend == Backend::Pgvector;
            if needs_columns {
                presets::check_pgvector_target(&input.target)?;
            }
            let id = m.id.clone().unwrap_or_default();
            let vector = m.vector.clone().unwrap_or_default();
            if needs_columns && id.is_empty() {
                return Err(LetheError::invalid("mapping.id", "is required for a pgvector table"));
            }
            if needs_columns && vector.is_empty() {
                return Err(LetheError::invalid("mapping.vector", "is required for a pgvector table"));
            }
            let mapping = Mapping {
                preset: None,
                id_column: id,
                id_kind: IdKind::Uuid,
                vector,
                text: None,
                source: None,
                tags,
                scope: None,
                timestamp: None,
            };
            (vec![input.target.clone()], mapping)
        }
    };
    if let Some(id) = &m.id {
        mapping.id_column.clone_from(id);
    }
    if let Some(v) = &m.vector {
        mapping.vector.clone_from(v);
    }
    if m.text.is_some() {
        mapping.text.clone_from(&m.text);
    }
    if m.source.is_some() {
        mapping.source.clone_from(&m.source);
    }
    if let Some(t) = &m.tags {
        mapping.tags = t.clone();
    }
    if m.scope.is_some() {
        mapping.scope.clone_from(&m.scope);
    }
    if m.timestamp.is_some() {
        mapping.timestamp.clone_from(&m.timestamp);
    }
    if input.backend == Backend::Qdrant {
        let with_column = [mapping.text.as_ref(), mapping.source.as_ref(), Some(&mapping.tags), mapping.timestamp.as_ref()]
            .into_iter()
            .flatten()
            .chain(mapping.scope.as_ref().map(|s| &s.field))
            .any(|f| !f.column.is_empty());
        if with_column {
            return Err(LetheError::invalid("mapping", "Qdrant fields are payload paths: leave `column` empty"));
        }
    }
    if mapping.tags.column.is_empty() && mapping.tags.path.is_empty() {
        return Err(LetheError::invalid("mapping.tags", "names no column and no path"));
    }
    if !mapping.tags.json_text_path.is_empty() {
        return Err(LetheError::invalid("mapping.tags", "tags are matched in the store, not inside a JSON text"));
    }
    Ok((names, mapping))
}

/// The first candidate that exists (LlamaIndex's `data_` prefix), else the first.
async fn pick_backend_name(ctx: &Context, backend: Backend, candidates: &[String]) -> Result<String> {
    let first = candidates.first().cloned().ok_or_else(|| LetheError::invalid("target", "is required"))?;
    if backend == Backend::Pgvector && candidates.len() > 1 {
        for c in candidates {
            if crate::vector_store::table_exists(&ctx.pool, c).await? {
                return Ok(c.clone());
            }
        }
    }
    Ok(first)
}

/// LangChain's shared table is scoped by the collection's uuid, found by its name.
async fn resolve_langchain_scope(ctx: &Context, mapping: &mut Mapping) -> Result<()> {
    let Some(scope) = mapping.scope.as_mut() else { return Ok(()) };
    let name = scope.value.clone();
    match crate::vector_store::langchain_collection_uuid(&ctx.pool, &name).await? {
        Some(uuid) => {
            scope.value = uuid.to_string();
            scope.named = Some(name);
            Ok(())
        }
        None => Err(LetheError::invalid("target", format!("no LangChain collection named `{name}` (langchain_pg_collection)"))),
    }
}

/// Lethe's own tables, from its migrations: never attachable.
static OWN_TABLES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let create = regex::Regex::new(r"(?i)CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)").expect("valid regex");
    let mut names: Vec<String> = crate::store::MIGRATOR
        .iter()
        .flat_map(|m| create.captures_iter(&m.sql).map(|c| c[1].to_lowercase()).collect::<Vec<_>>())
        .collect();
    names.push("_sqlx_migrations".into());
    names
});

/// Whether the operator lets tenants attach this store (`attach.allowed`),
/// and that it is not one of Lethe's own.
const SYSTEM_SCHEMAS: [&str; 2] = ["information_schema", "pg_catalog"];

fn check_allowed(ctx: &Context, backend: Backend, backend_name: &str) -> Result<()> {
    let refused = |why: String| Err(LetheError::precondition("attach_not_allowed", why));
    let own = match backend {
        Backend::Pgvector => {
            let table = backend_name.rsplit('.').next().unwrap_or(backend_name).trim_matches('"').to_lowercase();
            let schema = backend_name.rsplit_once('.').map(|(s, _)| s.trim_matches('"').to_lowercase());
            // The catalogs are no vector store whatever the allowlist says.
            if let Some(schema) = schema.filter(|s| SYSTEM_SCHEMAS.contains(&s.as_str()) || s.starts_with("pg_")) {
                return refused(format!("`{backend_name}` is in the system schema `{schema}`"));
            }
            // Unqualified, PostgreSQL looks in pg_catalog before any schema.
            if !backend_name.contains('.') && table.starts_with("pg_") {
                return refused(format!(
                    "`{backend_name}` would resolve to the system catalog first: qualify the table with its schema"
                ));
            }
            OWN_TABLES.contains(&table) || table.starts_with("lv_")
        }
        Backend::Qdrant => own_qdrant_collection(ctx, backend_name),
    };
    if own {
        return refused(format!("`{backend_name}` is one of Lethe's own tables or collections"));
    }
    let qualified = match backend {
        Backend::Pgvector if !backend_name.contains('.') => format!("pgvector:public.{backend_name}"),
        _ => format!("{backend}:{backend_name}"),
    };
    if ctx.settings.attach.allowed.iter().any(|p| wildcard_match(p, &qualified)) {
        Ok(())
    } else {
        refused(format!("`{qualified}` is not in this server's attach.allowed"))
    }
}

/// Whether a Qdrant name is one of Lethe's own collections (or their aliases).
fn own_qdrant_collection(ctx: &Context, name: &str) -> bool {
    let prefix = &ctx.settings.qdrant.collection_prefix;
    !prefix.is_empty() && name.starts_with(prefix.as_str())
}

/// `pattern` with `*` matching any run of characters, against all of `s`.
fn wildcard_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || !s[first.len()..].ends_with(last) || s.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(wildcard_match("*", "pgvector:public.x"));
        assert!(wildcard_match("pgvector:public.data_*", "pgvector:public.data_docs"));
        assert!(!wildcard_match("pgvector:public.data_*", "pgvector:other.data_docs"));
        assert!(wildcard_match("qdrant:*_docs", "qdrant:team_docs"));
        assert!(!wildcard_match("qdrant:*_docs", "qdrant:team_docs2"));
        assert!(wildcard_match("a*b*c", "a-b-b-c"));
        assert!(!wildcard_match("ab*ba", "aba"));
        assert!(wildcard_match("exact", "exact"));
    }

    #[test]
    fn lethes_own_tables_come_from_its_migrations() {
        for t in ["subjects", "chunks", "deletion_log", "attach_jobs", "attached_point_ids", "_sqlx_migrations"] {
            assert!(OWN_TABLES.iter().any(|o| o == t), "{t}");
        }
        assert!(!OWN_TABLES.iter().any(|o| o == "langchain_pg_embedding"));
    }
}
