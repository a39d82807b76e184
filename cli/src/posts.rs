//! `hark posts`: scheduled deliveries for operators — list them, schedule an applied post,
//! cancel a delivery, retry a failed one, clear a channel's re-authentication flag.

use std::io::Write;

use hark_shared::domain::ScheduledPost;
use hark_shared::ports::{ConfigStore, DeliveryStore, MessageQueue};
use hark_shared::publishing::{
    DeliveryView, PublishingError, ScheduleReport, cancel_delivery, clear_channel_reauth,
    list_deliveries, retry_delivery, schedule_post,
};
use jiff::Timestamp;

/// `hark posts [--json] [--post ID]` lists deliveries; the subcommands change them.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PostsArgs {
    #[command(subcommand)]
    pub action: Option<PostsAction>,
    /// One JSON object per line: post, channel, status, platform_id, url, attempts, error
    /// (and id, platform, occurrence, scheduled_for, due_at, needs_reauth).
    #[arg(long)]
    pub json: bool,
    /// Only the deliveries of this post.
    #[arg(long, value_name = "ID")]
    pub post: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum PostsAction {
    /// Schedule a post that `hark apply` stored: validate it against its stored channels
    /// and create the deliveries of its next occurrence that do not exist yet (apply does
    /// this for every post it writes; this repeats it for one post, idempotently).
    Schedule {
        /// The post's id (as in the applied file).
        #[arg(long, value_name = "ID")]
        post: String,
    },
    /// Cancel a delivery that has not been sent (QUEUED, CLAIMED or UNKNOWN): it becomes
    /// CANCELLED, a terminal state, and a PostCancelled event is emitted. A SENT delivery
    /// is refused (its create request may have reached the platform). To stop a recurring
    /// post, give it an `until` (or remove its `repeat`) and apply again.
    Cancel {
        /// The delivery id (see `hark posts`).
        id: String,
        /// Recorded on the delivery and in the event.
        #[arg(long, default_value = "cancelled by operator")]
        reason: String,
    },
    /// Put a FAILED delivery back in the queue, due now (after fixing what made it fail).
    Retry {
        /// The delivery id (see `hark posts`).
        id: String,
    },
    /// Approve an automatic post a trigger made as a draft (its campaign's policy says
    /// `approval: required`): it is scheduled and published (now, if its time has passed).
    /// A draft past its deadline cannot be approved.
    Approve {
        /// The post id (see `hark posts`: drafts show as DRAFT).
        id: String,
    },
    /// Clear a channel's "needs re-authentication" flag. Replacing the channel's secret
    /// clears it by itself; this is for a fix Hark cannot see (the same token re-authorised).
    ClearReauth {
        /// The channel id.
        channel: String,
    },
}

/// Why `hark posts` failed.
#[derive(Debug, thiserror::Error)]
pub enum PostsError {
    #[error(transparent)]
    Publishing(#[from] PublishingError),
    #[error("post `{0}` does not exist; apply it first with `hark apply FILE`")]
    UnknownPost(String),
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
    #[error(transparent)]
    Approve(#[from] hark_shared::actions::ApproveError),
}

impl PostsError {
    /// Whether the user asked for something impossible (exit code 2) rather than something
    /// failing (exit code 1).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            PostsError::UnknownPost(_)
                | PostsError::Approve(
                    hark_shared::actions::ApproveError::Unknown(_)
                        | hark_shared::actions::ApproveError::NotADraft(_)
                        | hark_shared::actions::ApproveError::Expired { .. }
                )
                | PostsError::Publishing(
                    PublishingError::Invalid { .. }
                        | PublishingError::Schedule { .. }
                        | PublishingError::NotFound { .. }
                        | PublishingError::Transition(_)
                )
        )
    }
}

/// Runs `hark posts` against a store and the queue its events go to.
pub async fn run<S>(
    store: &S,
    queue: &dyn MessageQueue,
    args: &PostsArgs,
    now: Timestamp,
) -> Result<(), PostsError>
where
    S: ConfigStore + DeliveryStore,
{
    let mut out = std::io::stdout().lock();
    match &args.action {
        None => {
            let views = list_deliveries(store, args.post.as_deref()).await?;
            print_deliveries(&views, args.json, &mut out)?;
            // Drafts (automatic posts awaiting approval) have no deliveries yet.
            let posts: Vec<ScheduledPost> = store.list().await.map_err(PublishingError::from)?;
            for p in posts.iter().filter(|p| {
                args.post.as_deref().is_none_or(|id| id == p.id)
                    && p.draft.as_ref().is_some_and(|d| !d.is_approved())
            }) {
                let draft = p.draft.as_ref().expect("filtered on drafts");
                let status = if draft.expires_at <= now {
                    "EXPIRED"
                } else {
                    "DRAFT"
                };
                if args.json {
                    let line = serde_json::json!({
                        "post": p.id, "channel": p.channels.join(","), "status": status,
                        "expires_at": draft.expires_at, "text": p.text,
                        "campaign": p.campaign,
                    });
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(
                        out,
                        "{status:<10}  {:<20}  {:<16}  awaiting `hark posts approve {}` until {}",
                        p.id,
                        p.channels.join(","),
                        p.id,
                        draft.expires_at
                    )?;
                }
            }
        }
        Some(PostsAction::Schedule { post }) => {
            let Some(stored) = store
                .get::<ScheduledPost>(post)
                .await
                .map_err(PublishingError::from)?
            else {
                return Err(PostsError::UnknownPost(post.clone()));
            };
            let report = schedule_post(store, queue, &stored, true, now).await?;
            print_schedule(&[report], &mut out)?;
        }
        Some(PostsAction::Cancel { id, reason }) => {
            let d = cancel_delivery(store, queue, id, reason, now).await?;
            writeln!(out, "{} is {}: {reason}", d.id, d.status())?;
        }
        Some(PostsAction::Retry { id }) => {
            let d = retry_delivery(store, queue, id, now).await?;
            writeln!(
                out,
                "{} is {} again, due now (attempt {} next)",
                d.id,
                d.status(),
                d.attempts + 1
            )?;
        }
        Some(PostsAction::Approve { id }) => {
            let post = hark_shared::actions::approve_post(store, queue, id, now).await?;
            writeln!(
                out,
                "post {} approved: publishing at {} on {}",
                post.id,
                post.at,
                post.channels.join(", ")
            )?;
        }
        Some(PostsAction::ClearReauth { channel }) => {
            if clear_channel_reauth(store, channel, now).await? {
                writeln!(out, "channel {channel}: re-authentication flag cleared")?;
            } else {
                writeln!(out, "channel {channel} was not flagged")?;
            }
        }
    }
    Ok(())
}

/// One JSON line per delivery, or a table.
pub fn print_deliveries(
    views: &[DeliveryView],
    json: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    for v in views {
        if json {
            writeln!(out, "{}", serde_json::to_string(v).unwrap_or_default())?;
        } else {
            let detail = v
                .url
                .as_deref()
                .or(v.platform_id.as_deref())
                .or(v.error.as_deref())
                .unwrap_or("");
            writeln!(
                out,
                "{:<10}  {:<20}  {:<16}  {}  {}",
                v.status, v.post, v.channel, v.scheduled_for, detail
            )?;
        }
    }
    if !json && views.is_empty() {
        writeln!(
            out,
            "(no deliveries; posts are scheduled by `hark apply FILE`)"
        )?;
    }
    Ok(())
}

/// What scheduling did, one line per post.
pub fn print_schedule(reports: &[ScheduleReport], out: &mut impl Write) -> std::io::Result<()> {
    for r in reports {
        match (&r.occurrence, &r.skipped) {
            (_, Some(why)) => writeln!(out, "  {:<20}  not scheduled: {why}", r.post_id)?,
            (Some(at), None) => writeln!(
                out,
                "  {:<20}  due {at}: {} new, {} already scheduled{}",
                r.post_id,
                r.created.len(),
                r.already_scheduled.len(),
                if r.superseded.is_empty() {
                    String::new()
                } else {
                    format!(", {} superseded (cancelled)", r.superseded.len())
                }
            )?,
            (None, None) => writeln!(out, "  {:<20}  nothing to schedule", r.post_id)?,
        }
    }
    Ok(())
}
