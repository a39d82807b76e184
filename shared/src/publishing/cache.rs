//! Configuration read once per batch: a publisher invocation handles up to ten jobs, which
//! mostly share their channels (and often their posts), so each configuration document is
//! read from the store once per batch instead of once per job.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::ports::{ConfigStore, DeliveryStore, EntityKind, StoreError};

/// A store whose configuration documents are cached for its lifetime (one batch): reads
/// hit the store once per document, writes go through to the store and into the cache (so
/// a channel flagged by one job is seen by the next). Deliveries are never cached.
pub struct BatchConfigCache<'a, S> {
    inner: &'a S,
    documents: Mutex<HashMap<(EntityKind, String), Option<Value>>>,
}

impl<'a, S> BatchConfigCache<'a, S> {
    pub fn new(inner: &'a S) -> Self {
        BatchConfigCache {
            inner,
            documents: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, kind: EntityKind, id: &str) -> Option<Option<Value>> {
        self.documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(kind, id.to_owned()))
            .cloned()
    }

    fn remember(&self, kind: EntityKind, id: &str, doc: Option<Value>) {
        self.documents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((kind, id.to_owned()), doc);
    }
}

#[async_trait::async_trait]
impl<S: ConfigStore> ConfigStore for BatchConfigCache<'_, S> {
    async fn get_document(&self, kind: EntityKind, id: &str) -> Result<Option<Value>, StoreError> {
        if let Some(doc) = self.cached(kind, id) {
            return Ok(doc);
        }
        let doc = self.inner.get_document(kind, id).await?;
        self.remember(kind, id, doc.clone());
        Ok(doc)
    }

    async fn put_document(
        &self,
        kind: EntityKind,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        self.inner.put_document(kind, id, doc).await?;
        self.remember(kind, id, Some(doc.clone()));
        Ok(())
    }

    async fn list_documents(&self, kind: EntityKind) -> Result<Vec<Value>, StoreError> {
        self.inner.list_documents(kind).await
    }
}

crate::forward_delivery_store!(impl[<S: DeliveryStore>] BatchConfigCache<'_, S>);

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::Channel;
    use crate::embedded::{EmbeddedOptions, EmbeddedStore};

    #[tokio::test]
    async fn given_a_batch_then_documents_are_read_once_and_writes_are_seen_at_once() {
        let store = EmbeddedStore::open_in_memory(EmbeddedOptions {
            retention_days: 30,
            max_receive_count: 3,
            clock: Arc::new(SystemClock),
        })
        .unwrap();
        let channel: Channel = serde_json::from_value(
            serde_json::json!({"id": "masto", "platform": "mastodon", "token": "env:T"}),
        )
        .unwrap();
        store.upsert(&channel).await.unwrap();
        let cache = BatchConfigCache::new(&store);
        assert_eq!(
            cache.get::<Channel>("masto").await.unwrap(),
            Some(channel.clone())
        );
        // Changed behind the cache's back: the batch keeps its snapshot...
        let mut renamed = channel.clone();
        renamed.max_chars = Some(100);
        store.upsert(&renamed).await.unwrap();
        assert_eq!(cache.get::<Channel>("masto").await.unwrap(), Some(channel));
        // ...but its own writes are visible to the next job of the batch.
        cache.upsert(&renamed).await.unwrap();
        assert_eq!(cache.get::<Channel>("masto").await.unwrap(), Some(renamed));
        assert_eq!(cache.get::<Channel>("none").await.unwrap(), None);
    }
}
