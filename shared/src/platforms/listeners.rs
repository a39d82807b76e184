//! Which client listens to which platform: the [`ListenerFactory`] the poller uses.

use std::sync::Arc;

use super::hackernews::HackerNewsListener;
use super::mastodon::MastodonListener;
use super::rss::RssListener;
use super::{HttpClient, Listener, PlatformError};
use crate::domain::{Platform, Source};
use crate::listening::ListenerFactory;
use crate::secrets::SecretResolver;

/// Builds the real platform clients, resolving each source's credentials.
pub struct PlatformListeners {
    http: HttpClient,
    secrets: Arc<dyn SecretResolver>,
}

impl PlatformListeners {
    pub fn new(http: HttpClient, secrets: Arc<dyn SecretResolver>) -> Self {
        PlatformListeners { http, secrets }
    }
}

#[async_trait::async_trait]
impl ListenerFactory for PlatformListeners {
    async fn listener_for(&self, source: &Source) -> Result<Box<dyn Listener>, PlatformError> {
        let token = match &source.credentials {
            None => None,
            Some(reference) => Some(self.secrets.resolve(reference).await.map_err(|e| {
                PlatformError::AuthExpired {
                    platform: source.platform,
                    message: e.to_string(),
                }
            })?),
        };
        match source.platform {
            Platform::Mastodon => Ok(Box::new(MastodonListener::new(self.http.clone(), token))),
            Platform::Hackernews => Ok(Box::new(HackerNewsListener::new(self.http.clone()))),
            Platform::Rss => Ok(Box::new(RssListener::new(self.http.clone()))),
            other => Err(PlatformError::Permanent {
                platform: other,
                status: None,
                message: format!("listening on {other} is not available in this version of Hark"),
            }),
        }
    }
}
