//! Configuration documents (sources, campaigns, channels, posts).

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::{EmbeddedStore, SqlResultExt, from_json, to_json};
use crate::ports::{ConfigStore, EntityKind, StoreError};

#[async_trait::async_trait]
impl ConfigStore for EmbeddedStore {
    async fn get_document(&self, kind: EntityKind, id: &str) -> Result<Option<Value>, StoreError> {
        let doc = self.with_conn(|conn| {
            conn.query_row(
                "SELECT doc FROM documents WHERE kind = ?1 AND id = ?2",
                params![kind.as_str(), id],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .op("get_document")
        })?;
        doc.map(|doc| from_json(kind.as_str(), id, &doc))
            .transpose()
    }

    async fn put_document(
        &self,
        kind: EntityKind,
        id: &str,
        doc: &Value,
    ) -> Result<(), StoreError> {
        let text = to_json(kind.as_str(), id, doc)?;
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO documents (kind, id, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (kind, id) DO UPDATE SET doc = excluded.doc",
                params![kind.as_str(), id, text],
            )
            .op("put_document")
        })?;
        Ok(())
    }

    async fn list_documents(&self, kind: EntityKind) -> Result<Vec<Value>, StoreError> {
        let rows = self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, doc FROM documents WHERE kind = ?1 ORDER BY id")
                .op("list_documents")?;
            let rows = stmt
                .query_map([kind.as_str()], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .op("list_documents")?;
            rows.collect::<Result<Vec<_>, _>>().op("list_documents")
        })?;
        rows.iter()
            .map(|(id, doc)| from_json(kind.as_str(), id, doc))
            .collect()
    }
}
