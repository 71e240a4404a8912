//! Collections, aliases and their persistence.
//!
//! On-disk layout under `--data-dir`:
//!
//! ```text
//! <data-dir>/standin-meta.json            collections + aliases (+ user metadata), JSON
//! <data-dir>/collections/<name>/          one qdrant-edge shard per collection
//!     edge_config.json                    vector params, optimizer + WAL config
//!     wal/                                write-ahead log (never truncated by qdrant-edge 0.7.2)
//!     segments/<uuid>/                    segment files (vectors, payload storage, id tracker,
//!                                         payload indexes, HNSW graph once optimized)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use qdrant_edge::external::serde_json::{self, Map, Value as Json};
use qdrant_edge::{EdgeShard, OperationResult};
use serde::{Deserialize, Serialize};
use tonic::Status;

use crate::convert::{collection_not_found, op_error};

pub const META_FILE: &str = "standin-meta.json";
pub const COLLECTIONS_DIR: &str = "collections";

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub collections: BTreeMap<String, CollectionMeta>,
    /// alias -> collection name
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct CollectionMeta {
    /// User metadata of the collection (`CreateCollection.metadata`), as JSON.
    #[serde(default)]
    pub metadata: Map<String, Json>,
}

pub struct Collection {
    pub name: String,
    pub dir: PathBuf,
    /// `None` once the collection was deleted or the server shut down.
    shard: RwLock<Option<EdgeShard>>,
}

impl Collection {
    fn read_guard(&self) -> RwLockReadGuard<'_, Option<EdgeShard>> {
        self.shard.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, Option<EdgeShard>> {
        self.shard.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Run a read-only shard operation on the blocking pool (shared lock).
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&EdgeShard) -> OperationResult<T> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let guard = this.read_guard();
            let shard = guard
                .as_ref()
                .ok_or_else(|| collection_not_found(&this.name))?;
            f(shard).map_err(op_error)
        })
        .await
        .map_err(|e| Status::internal(format!("Service internal error: task failed: {e}")))?
    }

    /// Run a mutating shard operation on the blocking pool (exclusive lock), then flush the
    /// shard so the segment files on disk reflect the operation (qdrant-edge 0.7.2 does not
    /// replay its WAL on load, so flushing is what makes writes durable).
    pub async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&EdgeShard) -> Result<T, Status> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let guard = this.write_guard();
            let shard = guard
                .as_ref()
                .ok_or_else(|| collection_not_found(&this.name))?;
            let out = f(shard);
            shard.flush();
            out
        })
        .await
        .map_err(|e| Status::internal(format!("Service internal error: task failed: {e}")))?
    }

    /// Drop the shard (flushes it) — must happen before its directory is removed.
    fn close_blocking(&self) {
        let shard = self.write_guard().take();
        drop(shard);
    }
}

pub struct Registry {
    pub collections: BTreeMap<String, Arc<Collection>>,
    pub meta: Meta,
}

impl Registry {
    /// Resolve a collection name or alias (aliases first, as Qdrant does).
    pub fn resolve(&self, name: &str) -> Result<Arc<Collection>, Status> {
        let real = self
            .meta
            .aliases
            .get(name)
            .map(String::as_str)
            .unwrap_or(name);
        self.collections
            .get(real)
            .cloned()
            .ok_or_else(|| collection_not_found(name))
    }
}

pub struct State {
    pub data_dir: PathBuf,
    pub registry: tokio::sync::RwLock<Registry>,
    op_id: AtomicU64,
}

impl State {
    /// Open (or initialise) the data directory and load every shard listed in the meta file.
    pub fn open_blocking(data_dir: &Path) -> std::io::Result<State> {
        std::fs::create_dir_all(data_dir.join(COLLECTIONS_DIR))?;
        let meta_path = data_dir.join(META_FILE);
        let mut meta: Meta = match std::fs::read(&meta_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::other(format!("cannot parse {}: {e}", meta_path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Meta::default(),
            Err(e) => return Err(e),
        };
        let mut collections = BTreeMap::new();
        for name in meta.collections.keys() {
            let dir = collection_dir(data_dir, name);
            let shard = EdgeShard::load(&dir, None).map_err(|e| {
                std::io::Error::other(format!("cannot load shard {}: {e}", dir.display()))
            })?;
            collections.insert(
                name.clone(),
                Arc::new(Collection {
                    name: name.clone(),
                    dir,
                    shard: RwLock::new(Some(shard)),
                }),
            );
        }
        // Drop dangling aliases (should not happen, but keep the invariant).
        meta.aliases.retain(|_, c| collections.contains_key(c));
        Ok(State {
            data_dir: data_dir.to_path_buf(),
            registry: tokio::sync::RwLock::new(Registry { collections, meta }),
            op_id: AtomicU64::new(0),
        })
    }

    pub fn next_op_id(&self) -> u64 {
        self.op_id.fetch_add(1, Ordering::Relaxed)
    }

    pub async fn resolve(&self, name: &str) -> Result<Arc<Collection>, Status> {
        self.registry.read().await.resolve(name)
    }

    /// Persist the meta file atomically (write tmp + rename).
    pub fn save_meta(&self, meta: &Meta) -> Result<(), Status> {
        let path = self.data_dir.join(META_FILE);
        let tmp = self.data_dir.join(format!("{META_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(meta)
            .map_err(|e| Status::internal(format!("Service internal error: {e}")))?;
        let io = |e: std::io::Error| {
            Status::internal(format!(
                "Service internal error: cannot write {}: {e}",
                path.display()
            ))
        };
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(())
    }

    pub fn new_collection(name: &str, dir: PathBuf, shard: EdgeShard) -> Arc<Collection> {
        Arc::new(Collection {
            name: name.to_string(),
            dir,
            shard: RwLock::new(Some(shard)),
        })
    }

    /// Close a collection (drop its shard) and remove its directory.
    pub async fn destroy(coll: Arc<Collection>) -> Result<(), Status> {
        tokio::task::spawn_blocking(move || {
            coll.close_blocking();
            match std::fs::remove_dir_all(&coll.dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Status::internal(format!(
                    "Service internal error: cannot remove {}: {e}",
                    coll.dir.display()
                ))),
            }
        })
        .await
        .map_err(|e| Status::internal(format!("Service internal error: task failed: {e}")))?
    }

    /// Close every shard (flushing it). Used on shutdown.
    pub async fn close_all(&self) {
        let colls: Vec<_> = self
            .registry
            .read()
            .await
            .collections
            .values()
            .cloned()
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for c in colls {
                c.close_blocking();
            }
        })
        .await;
    }
}

pub fn collection_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(COLLECTIONS_DIR).join(name)
}
