//! Source cursors with optimistic locking.

use rusqlite::{OptionalExtension, params};

use super::{EmbeddedStore, SqlResultExt, from_json, from_sql_int, to_json, to_sql_int};
use crate::domain::Cursor;
use crate::ports::{CursorStore, StoreError};

const ENTITY: &str = "cursor";

#[async_trait::async_trait]
impl CursorStore for EmbeddedStore {
    async fn get_cursor(&self, source_id: &str) -> Result<Option<Cursor>, StoreError> {
        let row = self.with_conn(|conn| {
            conn.query_row(
                "SELECT version, doc FROM cursors WHERE source_id = ?1",
                [source_id],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()
            .op("get_cursor")
        })?;
        let Some((version, doc)) = row else {
            return Ok(None);
        };
        let mut cursor: Cursor = from_json(ENTITY, source_id, &doc)?;
        // The column is what the conditional writes check, so it is the truth.
        cursor.version = from_sql_int(ENTITY, source_id, "version", version)?;
        Ok(Some(cursor))
    }

    async fn save_cursor(&self, cursor: &Cursor) -> Result<Cursor, StoreError> {
        let mut saved = cursor.clone();
        saved.version = cursor.version + 1;
        let doc = to_json(ENTITY, &cursor.source_id, &saved)?;
        let new_version = to_sql_int(saved.version);
        // One conditional statement each: atomic without an explicit transaction, also
        // against other processes.
        let changed = self.with_conn(|conn| {
            if cursor.version == 0 {
                conn.execute(
                    "INSERT INTO cursors (source_id, version, doc) VALUES (?1, ?2, ?3)
                     ON CONFLICT (source_id) DO NOTHING",
                    params![cursor.source_id, new_version, doc],
                )
            } else {
                conn.execute(
                    "UPDATE cursors SET version = ?2, doc = ?3
                     WHERE source_id = ?1 AND version = ?4",
                    params![
                        cursor.source_id,
                        new_version,
                        doc,
                        to_sql_int(cursor.version)
                    ],
                )
            }
            .op("save_cursor")
        })?;
        if changed == 0 {
            return Err(StoreError::Conflict {
                entity: ENTITY,
                id: cursor.source_id.clone(),
                expected: cursor.version,
            });
        }
        Ok(saved)
    }
}
