//! Configuration entities (sources, campaigns, channels, posts) stored as documents.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::StoreError;
use crate::domain::{Campaign, Channel, ScheduledPost, Source};

/// The kinds of configuration entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    Source,
    Campaign,
    Channel,
    Post,
    /// Operational state of a publishing channel (needs re-authentication), written by the
    /// publisher, not by `hark apply`.
    ChannelAuth,
    /// A campaign's crisis brake (written by the `pause_posts` action and `hark campaigns`).
    Brake,
    /// Global switches (the automatic-publishing kill switch).
    Setting,
    /// A channel blocked until a platform's rate-limit reset (written by publishers).
    RateBlock,
}

impl EntityKind {
    pub const ALL: [EntityKind; 8] = [
        EntityKind::Source,
        EntityKind::Campaign,
        EntityKind::Channel,
        EntityKind::Post,
        EntityKind::ChannelAuth,
        EntityKind::Brake,
        EntityKind::Setting,
        EntityKind::RateBlock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Source => "source",
            EntityKind::Campaign => "campaign",
            EntityKind::Channel => "channel",
            EntityKind::Post => "post",
            EntityKind::ChannelAuth => "channel-auth",
            EntityKind::Brake => "brake",
            EntityKind::Setting => "setting",
            EntityKind::RateBlock => "rate-block",
        }
    }
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration entity: a document with a kind and an id.
pub trait ConfigEntity: Serialize + DeserializeOwned + Send + Sync {
    const KIND: EntityKind;
    fn id(&self) -> &str;
}

impl ConfigEntity for Source {
    const KIND: EntityKind = EntityKind::Source;
    fn id(&self) -> &str {
        &self.id
    }
}

impl ConfigEntity for Campaign {
    const KIND: EntityKind = EntityKind::Campaign;
    fn id(&self) -> &str {
        &self.id
    }
}

impl ConfigEntity for Channel {
    const KIND: EntityKind = EntityKind::Channel;
    fn id(&self) -> &str {
        &self.id
    }
}

impl ConfigEntity for ScheduledPost {
    const KIND: EntityKind = EntityKind::Post;
    fn id(&self) -> &str {
        &self.id
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Created,
    Updated,
    Unchanged,
}

impl UpsertOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            UpsertOutcome::Created => "create",
            UpsertOutcome::Updated => "update",
            UpsertOutcome::Unchanged => "unchanged",
        }
    }
}

/// Stores configuration documents. Backends implement the three raw methods; the typed
/// helpers are provided.
#[async_trait::async_trait]
pub trait ConfigStore: Send + Sync {
    async fn get_document(&self, kind: EntityKind, id: &str) -> Result<Option<Value>, StoreError>;

    async fn put_document(&self, kind: EntityKind, id: &str, doc: &Value)
    -> Result<(), StoreError>;

    /// All documents of a kind, ordered by id.
    async fn list_documents(&self, kind: EntityKind) -> Result<Vec<Value>, StoreError>;

    /// What [`ConfigStore::upsert`] would do, without writing.
    async fn plan_upsert<E: ConfigEntity>(&self, entity: &E) -> Result<UpsertOutcome, StoreError>
    where
        Self: Sized,
    {
        let doc = to_document(entity)?;
        Ok(match self.get_document(E::KIND, entity.id()).await? {
            None => UpsertOutcome::Created,
            Some(stored) if stored == doc => UpsertOutcome::Unchanged,
            Some(_) => UpsertOutcome::Updated,
        })
    }

    /// Creates or replaces the entity; reports `Unchanged` (and writes nothing) when the
    /// stored document is identical.
    async fn upsert<E: ConfigEntity>(&self, entity: &E) -> Result<UpsertOutcome, StoreError>
    where
        Self: Sized,
    {
        let outcome = self.plan_upsert(entity).await?;
        if outcome != UpsertOutcome::Unchanged {
            let doc = to_document(entity)?;
            self.put_document(E::KIND, entity.id(), &doc).await?;
        }
        Ok(outcome)
    }

    async fn get<E: ConfigEntity>(&self, id: &str) -> Result<Option<E>, StoreError>
    where
        Self: Sized,
    {
        match self.get_document(E::KIND, id).await? {
            None => Ok(None),
            Some(doc) => from_document(E::KIND, id, doc).map(Some),
        }
    }

    async fn list<E: ConfigEntity>(&self) -> Result<Vec<E>, StoreError>
    where
        Self: Sized,
    {
        let docs = self.list_documents(E::KIND).await?;
        docs.into_iter()
            .map(|doc| {
                let id = doc
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                from_document(E::KIND, &id, doc)
            })
            .collect()
    }
}

fn to_document<E: ConfigEntity>(entity: &E) -> Result<Value, StoreError> {
    serde_json::to_value(entity).map_err(|e| StoreError::Corrupt {
        entity: E::KIND.as_str(),
        id: entity.id().to_owned(),
        source: Box::new(e),
    })
}

fn from_document<E: ConfigEntity>(kind: EntityKind, id: &str, doc: Value) -> Result<E, StoreError> {
    serde_json::from_value(doc).map_err(|e| StoreError::Corrupt {
        entity: kind.as_str(),
        id: id.to_owned(),
        source: Box::new(e),
    })
}
