//! Collections: registration (in lineage and in the backend) and listing.

use uuid::Uuid;

use crate::context::Context;
use crate::domain::{Backend, CollectionName, CollectionSpec, Distance, Screening};
use crate::error::{LetheError, Result};
use crate::store::lineage;

/// A request to register a collection.
#[derive(Debug, Clone)]
pub struct NewCollection {
    pub name: CollectionName,
    pub backend: Backend,
    pub dimension: usize,
    pub distance: Distance,
    pub store_text: bool,
    pub retention_days: u32,
    /// None: the server's default (`ingest.screening`).
    pub screening: Option<Screening>,
}

/// Registers a collection and creates it in its backend. Registering the
/// same name again with the same settings returns the existing one.
///
/// # Errors
/// `AlreadyExists` when the name exists with other settings; `InvalidArgument`
/// when the dimension differs from the embedder's; backend failures.
pub async fn create_collection(ctx: &Context, tenant_id: Uuid, new: NewCollection) -> Result<CollectionSpec> {
    let store = ctx.stores.backend(new.backend)?;
    let collection_id = Uuid::new_v4();
    let backend_name = match new.backend {
        Backend::Pgvector => format!("lv_{}", collection_id.simple()),
        Backend::Qdrant => format!("{}{}", ctx.settings.qdrant.collection_prefix, collection_id.simple()),
    };
    let wanted = CollectionSpec {
        collection_id,
        tenant_id,
        name: new.name,
        backend: new.backend,
        backend_name,
        dimension: new.dimension,
        distance: new.distance,
        embedding_model: ctx.embedder.model_name().to_owned(),
        store_text: new.store_text,
        retention_days: new.retention_days,
        screening: new.screening.unwrap_or(ctx.settings.ingest.screening),
        created_at: chrono::Utc::now(),
        mapping: None,
    };
    // The backend object first: a registered collection always exists in its
    // backend. A crash in between leaves an unregistered, empty object.
    let existing = lineage::collection_by_name(&ctx.pool, tenant_id, wanted.name.as_str()).await?;
    if let Some(existing) = existing {
        return same_settings(existing, &wanted);
    }
    store.create_collection(&wanted).await?;
    let mut conn = ctx.pool.acquire().await.map_err(crate::store::StoreError::from)?;
    let stored = lineage::insert_collection(&mut conn, &wanted).await?;
    drop(conn);
    if stored.collection_id != wanted.collection_id {
        // Lost a race with an identical registration: drop our backend object.
        store.drop_collection(&wanted).await?;
        return same_settings(stored, &wanted);
    }
    Ok(stored)
}

/// Whether a registration repeats the existing collection's settings. The
/// retention rule is not compared: it is only the initial rule, which
/// `SetRetention` may have changed since (a pipeline that registers its
/// collection at every start must not fail because of that).
fn same_settings(existing: CollectionSpec, wanted: &CollectionSpec) -> Result<CollectionSpec> {
    let same = existing.backend == wanted.backend
        && existing.dimension == wanted.dimension
        && existing.distance == wanted.distance
        && existing.store_text == wanted.store_text
        && existing.screening == wanted.screening;
    if same {
        Ok(existing)
    } else {
        Err(LetheError::AlreadyExists {
            message: format!("collection `{}` exists with other settings", existing.name),
        })
    }
}

/// # Errors
/// Database failures.
pub async fn list_collections(ctx: &Context, tenant_id: Uuid) -> Result<Vec<CollectionSpec>> {
    Ok(lineage::list_collections(&ctx.pool, tenant_id).await?)
}

/// # Errors
/// `NotFound` for an unknown name.
pub async fn collection(ctx: &Context, tenant_id: Uuid, name: &CollectionName) -> Result<CollectionSpec> {
    lineage::collection_by_name(&ctx.pool, tenant_id, name.as_str())
        .await?
        .ok_or_else(|| LetheError::NotFound(format!("collection `{name}`")))
}
