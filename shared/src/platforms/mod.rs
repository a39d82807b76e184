//! Platform clients: thin reqwest clients, one module per platform, with the platform's
//! quirks, limits and failure classification in one place each.
//!
//! Listening clients implement [`Listener`]; publishing clients implement [`Publisher`].

pub mod bluesky;
pub mod discord;
mod error;
pub mod facebook;
pub mod hackernews;
pub mod http;
pub mod linkedin;
pub mod listeners;
pub mod mastodon;
pub mod ratelimit;
pub mod reddit;
pub mod rss;
pub mod slack;
pub mod telegram;
pub mod webhook;
pub mod x;
pub mod youtube;

use jiff::Timestamp;

use crate::domain::{Cursor, Mention, Source};

pub use error::PlatformError;
pub use http::{HttpClient, UrlError};
pub use ratelimit::RateLimit;

/// Bounds on one listening call, so one invocation stays short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenLimits {
    /// Pages fetched at most in this call.
    pub max_pages: usize,
    /// The current instant (from the clock port).
    pub now: Timestamp,
}

/// What one listening call found.
#[derive(Debug, Clone, PartialEq)]
pub struct Listened {
    /// New items, oldest first where the platform lets us tell.
    pub mentions: Vec<Mention>,
    /// The cursor to store **after** the mentions are safely queued. Its `version` is the
    /// one that was passed in (the store increments it).
    pub cursor: Cursor,
    /// False when the page cap stopped the call before it caught up: poll again soon.
    pub caught_up: bool,
    /// The platform's rate-limit status from the last response, when it sent one.
    pub rate_limit: Option<RateLimit>,
}

/// "Give me what is new since this cursor." One implementation per listening platform.
#[async_trait::async_trait]
pub trait Listener: Send + Sync {
    async fn listen(
        &self,
        source: &Source,
        cursor: &Cursor,
        limits: ListenLimits,
    ) -> Result<Listened, PlatformError>;
}

/// The content of one delivery, ready for a platform (overrides already applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingPost {
    pub text: String,
    pub link: Option<String>,
}

/// Where a created post lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The platform's id (status id, at-uri rkey, message id...).
    pub platform_id: String,
    /// Web URL people can open, when the platform has one.
    pub url: Option<String>,
}

/// What a look through an account's recent posts found (see [`Publisher::find_published`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A post with exactly this text exists: the earlier attempt did create it.
    Found(Published),
    /// Every post of the account created since `since` was read and none has this text:
    /// it is certain the earlier attempt created nothing.
    NotFound,
    /// This client cannot look (no read API, or not implemented): the caller must not
    /// conclude anything.
    Unsupported,
}

/// Creates posts (or messages) on one configured channel.
#[async_trait::async_trait]
pub trait Publisher: Send + Sync {
    /// Creates the post. `idempotency_key` is the delivery id: identical on every retry of
    /// the same delivery, so platforms with an idempotency guard can suppress duplicates.
    async fn publish(
        &self,
        post: &OutgoingPost,
        idempotency_key: &str,
    ) -> Result<Published, PlatformError>;

    /// Settles an ambiguous create on platforms without an idempotency guard: reads the
    /// account's own posts created at or after `since` (newest first, following pages
    /// until older than `since`) and looks for one whose text is exactly the text this
    /// client would have sent for `post`. Never "the newest post".
    async fn find_published(
        &self,
        post: &OutgoingPost,
        since: Timestamp,
    ) -> Result<Lookup, PlatformError> {
        let _ = (post, since);
        Ok(Lookup::Unsupported)
    }
}
