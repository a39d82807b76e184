//! Operator commands around triggers: the crisis brake (`hark campaigns brake|resume`),
//! the automatic-publishing kill switch (`hark kill-switch`) and the firing timeline
//! (`hark triggers`).

use std::io::Write;

use hark_shared::actions::{Brake, KILL_SWITCH_ID, KillSwitch, engage_brake, release_brake};
use hark_shared::domain::Campaign;
use hark_shared::events::HarkEvent;
use hark_shared::ports::{ConfigStore, DeliveryStore, StoreError, TriggerStore};
use jiff::Timestamp;

#[derive(Debug, clap::Subcommand)]
pub enum CampaignAction {
    /// Pull the crisis brake: every queued post of the campaign is paused (alerts still go
    /// out), and posts that come due are held, until `hark campaigns resume`.
    Brake {
        id: String,
        #[arg(long, default_value = "crisis brake pulled by an operator")]
        reason: String,
    },
    /// Release the crisis brake: the campaign's paused posts are queued again (those whose
    /// time has passed go out now, once).
    Resume { id: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
    Status,
}

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("campaign `{0}` does not exist")]
    UnknownCampaign(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
}

pub async fn campaign_action<S: ConfigStore + DeliveryStore>(
    store: &S,
    action: &CampaignAction,
    now: Timestamp,
) -> Result<(), OpsError> {
    let mut out = std::io::stdout().lock();
    let id = match action {
        CampaignAction::Brake { id, .. } | CampaignAction::Resume { id } => id,
    };
    if store.get::<Campaign>(id).await?.is_none() {
        return Err(OpsError::UnknownCampaign(id.clone()));
    }
    match action {
        CampaignAction::Brake { id, reason } => {
            let paused = engage_brake(store, id, reason, None, now).await?;
            writeln!(
                out,
                "campaign {id}: crisis brake engaged, {paused} queued delivery(ies) paused"
            )?;
        }
        CampaignAction::Resume { id } => {
            let was: Option<Brake> = store.get(id).await?;
            let resumed = release_brake(store, id, now).await?;
            writeln!(
                out,
                "campaign {id}: {}, {resumed} delivery(ies) queued again",
                if was.is_some_and(|b| b.engaged) {
                    "crisis brake released"
                } else {
                    "no brake was engaged"
                }
            )?;
        }
    }
    Ok(())
}

pub async fn kill_switch<S: ConfigStore>(
    store: &S,
    switch: Switch,
    reason: Option<String>,
    json: bool,
    now: Timestamp,
) -> Result<(), OpsError> {
    let mut out = std::io::stdout().lock();
    let current = match switch {
        Switch::Status => store
            .get::<KillSwitch>(KILL_SWITCH_ID)
            .await?
            .unwrap_or_else(|| KillSwitch::new(false, None, now)),
        Switch::On | Switch::Off => {
            let k = KillSwitch::new(matches!(switch, Switch::On), reason, now);
            store.upsert(&k).await?;
            k
        }
    };
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&current).unwrap_or_default()
        )?;
    } else {
        writeln!(
            out,
            "automatic publishing is {}{}",
            if current.on {
                "OFF (kill switch on)"
            } else {
                "allowed (kill switch off)"
            },
            current
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// `hark triggers`: the firings of one or every campaign, oldest first.
pub async fn triggers<S: ConfigStore + TriggerStore>(
    store: &S,
    campaign: Option<&str>,
    json: bool,
) -> Result<(), OpsError> {
    let ids: Vec<String> = match campaign {
        Some(c) => vec![c.to_owned()],
        None => store
            .list::<Campaign>()
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    let mut any = false;
    for id in ids {
        for record in store.list_firings(&id).await? {
            any = true;
            if json {
                writeln!(out, "{}", record.event)?;
                continue;
            }
            let summary = match serde_json::from_str::<HarkEvent>(&record.event) {
                Ok(HarkEvent::TriggerFired(f)) => f.summary,
                _ => String::from("(event unreadable)"),
            };
            writeln!(
                out,
                "{}  {:<16}  {:<16}  {summary}",
                record.fired_at, record.campaign, record.rule
            )?;
        }
    }
    if !any && !json {
        writeln!(out, "(no trigger has fired)")?;
    }
    Ok(())
}
