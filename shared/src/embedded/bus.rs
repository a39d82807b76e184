//! The local event bus: what EventBridge would receive, kept in a table so `hark demo`,
//! reports and tests can read it back.

use rusqlite::params;

use super::{EmbeddedStore, SqlResultExt, floor_micros};
use crate::actions::{BusEvent, EventBus};
use crate::clock::{Clock, SystemClock};
use crate::ports::{BoxError, StoreError};

#[async_trait::async_trait]
impl EventBus for EmbeddedStore {
    async fn put(&self, events: &[BusEvent]) -> Result<(), BoxError> {
        let now = floor_micros(SystemClock.now());
        self.with_conn(|conn| {
            let tx = conn.transaction().op("put events")?;
            for e in events {
                tx.execute(
                    "INSERT INTO bus_events (source, detail_type, detail, put_at_us)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![e.source, e.detail_type, e.detail, now],
                )
                .op("put events")?;
            }
            tx.commit().op("put events")
        })
        .map_err(|e| Box::new(e) as BoxError)
    }
}

impl EmbeddedStore {
    /// Every event put on the local bus, oldest first.
    pub fn bus_events(&self) -> Result<Vec<BusEvent>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT source, detail_type, detail FROM bus_events ORDER BY id")
                .op("bus events")?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(BusEvent {
                        source: row.get(0)?,
                        detail_type: row.get(1)?,
                        detail: row.get(2)?,
                    })
                })
                .op("bus events")?;
            rows.collect::<Result<Vec<_>, _>>().op("bus events")
        })
    }
}
