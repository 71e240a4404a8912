//! What every operation needs: the pool, the backends, the embedder, the
//! signer, settings, and the wake-up for workers. Built once by `startup`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::audit::Signer;
use crate::config::Settings;
use crate::embedding::Embedder;
use crate::error::Result;
use crate::keys::KeyProvider;
use crate::vector_store::VectorStores;

/// Wake-ups of the workers, one per queue: queueing a job wakes only the
/// workers that can take it (one shared wake-up made every queue's workers
/// run their claim for every erasure submitted: a dozen empty claims per job).
#[derive(Debug, Default)]
pub struct Wake {
    pub erasure: Notify,
    pub reindex: Notify,
    pub adoption: Notify,
    pub reconcile: Notify,
}

/// The most connections of its pool one request or one job holds at once:
/// a transaction holding locks, a statement beside it, and (for a job) a
/// lease renewal beside both. See [`Context::slot`].
pub const CONNECTIONS_PER_SLOT: u32 = 3;

/// Turns at a pool of `max_connections`: one per [`CONNECTIONS_PER_SLOT`].
pub fn slots(max_connections: u32) -> Arc<Semaphore> {
    Arc::new(Semaphore::new((max_connections / CONNECTIONS_PER_SLOT).max(1) as usize))
}

/// Shared handles; cheap to clone.
#[derive(Clone)]
pub struct Context {
    pub pool: PgPool,
    pub stores: VectorStores,
    pub embedder: Arc<dyn Embedder>,
    pub signer: Arc<Signer>,
    /// Unwraps the tenants' HMAC keys (`keys`).
    pub keys: Arc<dyn KeyProvider>,
    pub settings: Arc<Settings>,
    /// Notified when a job is queued, so an idle worker starts at once.
    pub wake: Arc<Wake>,
    /// Watch streams open now.
    pub watches: Arc<Watches>,
    /// Turns at `pool` (see [`Context::slot`]); its own per pool.
    pub slots: Arc<Semaphore>,
    /// Erase workers of this process running a batch now: a worker claims
    /// its share of the queue among the others that are idle
    /// (`erasure::worker::try_execute_batch`).
    pub busy_workers: Arc<AtomicUsize>,
    secrets: Arc<Mutex<HashMap<Uuid, Arc<Vec<u8>>>>>,
}

impl Context {
    pub fn new(
        pool: PgPool,
        stores: VectorStores,
        embedder: Arc<dyn Embedder>,
        signer: Arc<Signer>,
        keys: Arc<dyn KeyProvider>,
        settings: Settings,
    ) -> Self {
        Self {
            pool,
            stores,
            embedder,
            signer,
            keys,
            slots: slots(settings.database.max_connections),
            settings: Arc::new(settings),
            wake: Arc::default(),
            watches: Arc::default(),
            busy_workers: Arc::default(),
            secrets: Arc::default(),
        }
    }

    /// A turn at the pool, held by each write for as long as it holds its
    /// lock-holding transaction (`ingest::write`, `delete_points`), by each
    /// managing request (`LetheService::authorize`) and each job a worker
    /// runs, for as long as it runs. Turns do not nest: nothing that holds
    /// one calls what takes one. A request
    /// holds a transaction (locks) while its statements take a second
    /// connection, so as many requests as connections, each holding its
    /// first, would wait for a second none of them releases: every one fails
    /// with "pool timed out" after 10 s (64 concurrent writes did, on 20
    /// connections). With a turn each, at most `max_connections /
    /// CONNECTIONS_PER_SLOT` run at once, each sure to get what it needs;
    /// the others wait for a turn, in order, holding nothing.
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        // The semaphore is never closed.
        self.slots.clone().acquire_owned().await.ok()
    }

    /// The tenant's HMAC key (immutable, so cached), unwrapped by the key
    /// provider; made on first use.
    ///
    /// # Errors
    /// Database and key provider failures.
    pub async fn tenant_secret(&self, tenant_id: Uuid) -> Result<Arc<Vec<u8>>> {
        if let Some(s) = self.secrets.lock().ok().and_then(|m| m.get(&tenant_id).cloned()) {
            return Ok(s);
        }
        let secret = Arc::new(crate::keys::tenant_key(&self.pool, &*self.keys, tenant_id).await?);
        if let Ok(mut m) = self.secrets.lock() {
            m.insert(tenant_id, Arc::clone(&secret));
        }
        Ok(secret)
    }

    /// Keyed hash (HMAC-SHA256 with the tenant's secret) of a subject id or
    /// a normalised identifier: how tombstones and the log name people.
    ///
    /// # Errors
    /// Database failures.
    pub async fn keyed_hash(&self, tenant_id: Uuid, value: &str) -> Result<Vec<u8>> {
        let secret = self.tenant_secret(tenant_id).await?;
        Ok(keyed_hash(&secret, value))
    }
}

/// How many Watch streams (`WatchErasure`, `WatchReindex`) are open: each
/// holds a task that polls the database until its job ends or its client
/// goes away.
#[derive(Debug, Default)]
pub struct Watches(AtomicUsize);

impl Watches {
    /// Counts a watch until the returned guard is dropped.
    pub fn open(self: &Arc<Self>) -> WatchGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        WatchGuard(Arc::clone(self))
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One open watch; dropping it closes the count.
#[derive(Debug)]
pub struct WatchGuard(Arc<Watches>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// HMAC-SHA256(secret, value).
pub fn keyed_hash(secret: &[u8], value: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(value.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Subjects share this many advisory locks (see [`subject_lock_key`]).
pub const SUBJECT_LOCK_BUCKETS: u64 = 512;

/// Where the subjects' lock keys start: away from collections' keys, which
/// are random 64-bit numbers (a collision would only make a write wait).
const SUBJECT_LOCK_BASE: i64 = 0x4c45_5448_0000_0000; // "LETH"

/// The advisory-lock key that serialises ingest and erasure of one subject:
/// one of [`SUBJECT_LOCK_BUCKETS`], by its keyed hash. A write takes one
/// lock per bucket its tags fall in, however many people it names: a
/// lock per person let one request of 1,000 chunks with 100 tags each take
/// 100,000 locks and fill PostgreSQL's lock table (every other transaction
/// then failed with "out of shared memory"). A freeze waits for the in-flight
/// writes of its bucket, not only its subject's: a wait of one write.
/// Every process sharing a database must use the same buckets: do not run
/// a version before this one beside it.
pub fn subject_lock_key(subject_hash: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&subject_hash[..8]);
    // The bucket is below 512: the sum cannot overflow.
    SUBJECT_LOCK_BASE + i64::try_from(u64::from_le_bytes(b) % SUBJECT_LOCK_BUCKETS).unwrap_or(0)
}

/// The advisory-lock key of a collection: writes and erasures hold it shared,
/// a re-index's switch and each `DeletePoints` batch exclusively.
pub fn collection_lock_key(collection_id: uuid::Uuid) -> i64 {
    let b = collection_id.as_bytes();
    i64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]])
}
