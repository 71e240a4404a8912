//! Connecting to Qdrant (TLS, API key, timeouts) and the calls that
//! several operations share: aliases, physical collections, batched queries.

use super::*;

/// Adds the API key to the raw generated client's requests (the official
/// client's interceptor is private).
#[derive(Clone)]
pub(super) struct ApiKeyInterceptor(Option<MetadataValue<Ascii>>);

impl Interceptor for ApiKeyInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(key) = &self.0 {
            request.metadata_mut().insert(API_KEY_HEADER, key.clone());
        }
        Ok(request)
    }
}

impl QdrantStore {
    /// Deletes what `filter` selects and waits until it is applied.
    pub(super) async fn delete_filter(&self, spec: &CollectionSpec, filter: Filter) -> Result<()> {
        let name = &spec.backend_name;
        let request = DeletePointsBuilder::new(name.clone())
            .points(filter)
            .wait(true)
            .ordering(Self::write_ordering())
            .timeout(self.server_timeout());
        let response = self.client.delete_points(request).await.map_err(|e| map_error(e, name))?;
        check_completed(response.result, "delete")
    }

    /// Connects (and checks the connection) to Qdrant's gRPC endpoint
    /// (`http(s)://host:6334`). `timeout` bounds every request (the client's
    /// default of 5 s is too low for exact counts and waited deletes).
    ///
    /// The client's version-compatibility check stays on: it only prints a
    /// warning when the server's minor version is more than one away.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached, `Backend` for a bad
    /// URL or API key.
    pub async fn connect(url: &str, api_key: Option<String>, timeout: Duration) -> Result<Self> {
        let key_header = match &api_key {
            Some(key) => Some(
                key.parse::<MetadataValue<Ascii>>()
                    .map_err(|_| backend_error("the Qdrant API key is not a valid header value", None))?,
            ),
            None => None,
        };

        let builder = Qdrant::from_url(url).api_key(api_key).timeout(timeout).connect_timeout(CONNECT_TIMEOUT);
        // `build()` runs the compatibility health check on a thread with its
        // own runtime and blocks until it is done: keep it off the executor.
        let client = tokio::task::spawn_blocking(move || builder.build())
            .await
            .map_err(|e| backend_error(format!("building the Qdrant client failed: {e}"), None))?
            .map_err(|e| map_error(e, ""))?;
        let health = client.health_check().await.map_err(|e| map_error(e, ""))?;
        tracing::info!(url, server_version = %health.version, "connected to Qdrant");

        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| backend_error(format!("invalid Qdrant URL `{url}`: {e}"), Some(Box::new(e))))?
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT);
        if endpoint.uri().scheme_str() == Some("https") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| backend_error(format!("TLS setup for `{url}` failed: {e}"), Some(Box::new(e))))?;
        }
        let channel = endpoint.connect_lazy();
        let aliases = CollectionsClient::with_interceptor(channel, ApiKeyInterceptor(key_header));

        Ok(Self { client, aliases, timeout })
    }

    /// The collection an alias points to, `None` when there is no such alias.
    ///
    /// # Errors
    /// When the aliases cannot be listed.
    pub async fn resolve_alias(&self, alias: &str) -> Result<Option<String>> {
        let list = self.client.list_aliases().await.map_err(|e| map_error(e, alias))?;
        Ok(list.aliases.into_iter().find(|a| a.alias_name == alias).map(|a| a.collection_name))
    }

    /// Points `alias` at `new_collection` atomically: delete and create in ONE
    /// `UpdateAliases` request, so readers never see the alias missing. Creates
    /// the alias when it does not exist yet.
    ///
    /// # Errors
    /// `CollectionNotFound(new_collection)` when the target does not exist.
    pub async fn swap_alias(&self, alias: &str, new_collection: &str) -> Result<()> {
        if !self.collection_exists(new_collection).await? {
            return Err(VectorStoreError::CollectionNotFound(new_collection.to_owned()));
        }
        let mut actions = Vec::with_capacity(2);
        if self.resolve_alias(alias).await?.is_some() {
            actions.push(Action::DeleteAlias(DeleteAlias { alias_name: alias.to_owned() }));
        }
        actions.push(Action::CreateAlias(CreateAlias {
            collection_name: new_collection.to_owned(),
            alias_name: alias.to_owned(),
        }));
        self.update_aliases(actions, new_collection).await
    }

    /// Creates the physical collection `physical` with the spec's vector
    /// parameters and the keyword indexes, without touching any alias. A no-op
    /// for the parts that exist.
    pub(super) async fn create_physical(&self, spec: &CollectionSpec, physical: &str) -> Result<()> {
        let physical = physical.to_owned();
        if !self.collection_exists(&physical).await? {
            let dimension = u64::try_from(spec.dimension)
                .map_err(|_| backend_error(format!("dimension {} is too large", spec.dimension), None))?;
            let request = CreateCollectionBuilder::new(physical.clone())
                .vectors_config(VectorParamsBuilder::new(dimension, distance(spec.distance)))
                // Erasure wants deleted vectors out of the files soon:
                // - `deleted_threshold(0.0)`: a segment qualifies for vacuum as
                //   soon as it holds ANY deleted point (default 0.2, i.e. 20 %);
                // - `vacuum_min_vector_number(100)`: the server's minimum
                //   (default 1000); smaller segments are never vacuumed.
                .optimizers_config(optimizers_for_erasure())
                // The WAL holds every upserted vector and payload until its
                // closed segments are truncated; 1 MB segments (default 32 MB)
                // make erased data leave the WAL after ~1-2 MB of newer writes
                // instead of ~64 MB.
                .wal_config(WalConfigDiffBuilder::default().wal_capacity_mb(1))
                .timeout(self.server_timeout());
            match self.client.create_collection(request).await {
                Ok(_) => tracing::info!(collection = %physical, "created Qdrant collection"),
                // Lost a race with a concurrent creator: fine if it is there now.
                Err(e) if self.collection_exists(&physical).await.unwrap_or(false) => {
                    tracing::debug!(collection = %physical, error = %e, "collection appeared concurrently");
                }
                Err(e) => return Err(map_error(e, &physical)),
            }
        }
        // Creating an existing index is accepted by Qdrant (idempotent).
        for (field, is_tenant) in [(FIELD_TENANT, true), (FIELD_SUBJECTS, false), (FIELD_SOURCE, false)] {
            let mut request =
                CreateFieldIndexCollectionBuilder::new(physical.clone(), field, FieldType::Keyword).wait(true);
            if is_tenant {
                request = request.field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true).build());
            }
            let response = self.client.create_field_index(request).await.map_err(|e| map_error(e, &physical))?;
            check_completed(response.result, &format!("creating the `{field}` index"))?;
        }
        Ok(())
    }

    pub(super) async fn collection_exists(&self, name: &str) -> Result<bool> {
        self.client.collection_exists(name).await.map_err(|e| map_error(e, name))
    }

    /// One `UpdateAliases` request: the server applies all actions under one lock.
    pub(super) async fn update_aliases(&self, actions: Vec<Action>, name: &str) -> Result<()> {
        let request = ChangeAliases {
            actions: actions.into_iter().map(|a| AliasOperations { action: Some(a) }).collect(),
            timeout: Some(self.server_timeout()),
        };
        let mut raw = self.aliases.clone();
        let response = raw.update_aliases(request).await.map_err(|s| map_error(QdrantError::from(s), name))?;
        if response.into_inner().result {
            Ok(())
        } else {
            Err(backend_error(format!("alias change for `{name}` was not applied"), None))
        }
    }

    /// The hits of each query, in order: one `QueryBatch` request, or one
    /// `Query` per probe when the server does not implement `QueryBatch`
    /// (the qdrant-standin test server).
    pub(super) async fn query_all(&self, name: &str, queries: Vec<QueryPoints>) -> Result<Vec<Vec<QdrantScoredPoint>>> {
        let n = queries.len();
        let request = QueryBatchPointsBuilder::new(name, queries.clone())
            .read_consistency(Self::read_all())
            .timeout(self.server_timeout());
        match self.client.query_batch(request).await {
            Ok(response) if response.result.len() == n => Ok(response.result.into_iter().map(|b| b.result).collect()),
            Ok(response) => Err(backend_error(
                format!("QueryBatch answered {} results for {n} queries", response.result.len()),
                None,
            )),
            Err(QdrantError::ResponseError { status }) if status.code() == tonic::Code::Unimplemented => {
                tracing::debug!(collection = name, "QueryBatch is not implemented: one Query per probe");
                let mut results = Vec::with_capacity(n);
                for query in queries {
                    results.push(self.client.query(query).await.map_err(|e| map_error(e, name))?.result);
                }
                Ok(results)
            }
            Err(e) => Err(map_error(e, name)),
        }
    }

    pub(super) async fn delete_collection_if_exists(&self, name: &str) -> Result<()> {
        let request = DeleteCollectionBuilder::new(name).timeout(self.server_timeout());
        match self.client.delete_collection(request).await {
            Ok(_) => {
                tracing::info!(collection = name, "dropped Qdrant collection");
                Ok(())
            }
            Err(e) => match map_error(e, name) {
                VectorStoreError::CollectionNotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Server-side wait (seconds) for waited operations: a second below the
    /// client's deadline, so a slow operation answers `WaitTimeout` (reported
    /// as such) rather than the request being cut off.
    pub(super) fn server_timeout(&self) -> u64 {
        self.timeout.as_secs().saturating_sub(1).max(1)
    }

    pub(super) fn write_ordering() -> WriteOrdering {
        WriteOrdering { r#type: WriteOrderingType::Strong.into() }
    }

    pub(super) fn read_all() -> read_consistency::Value {
        read_consistency::Value::Type(ReadConsistencyType::All.into())
    }
}
