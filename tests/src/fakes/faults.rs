//! Faults the publishing fakes inject into create requests, queued per idempotency key
//! (Mastodon) or record key (Bluesky) and consumed in order.

use std::collections::{HashMap, VecDeque};

use jiff::SignedDuration;

/// One fault injected into one create request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// HTTP 500 before anything is created.
    ServerError,
    /// HTTP 429 with the platform's rate-limit headers, the reset this far ahead.
    RateLimited { reset_in: SignedDuration },
    /// The post is created, but the answer comes later than the client waits (a timeout
    /// after the server did the work).
    LoseResponse,
}

impl Fault {
    /// A short name for tallies.
    pub fn name(self) -> &'static str {
        match self {
            Fault::ServerError => "HTTP 500",
            Fault::RateLimited { .. } => "HTTP 429 + reset",
            Fault::LoseResponse => "response lost after create",
        }
    }
}

/// Faults waiting for their request, and the ones already injected.
#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    queued: HashMap<String, VecDeque<Fault>>,
    pub(crate) injected: Vec<(String, Fault)>,
}

impl FaultPlan {
    pub(crate) fn add(&mut self, key: &str, fault: Fault) {
        self.queued
            .entry(key.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// The next fault for a request with `key`, recorded as injected.
    pub(crate) fn take(&mut self, key: &str) -> Option<Fault> {
        let fault = self.queued.get_mut(key)?.pop_front()?;
        self.injected.push((key.to_owned(), fault));
        Some(fault)
    }
}
