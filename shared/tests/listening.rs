//! The listening connectors (Mastodon, Hacker News, RSS/Atom) and the Mastodon publisher,
//! each run against a wiremock fake that reproduces the platform's documented behaviour,
//! plus property tests feeding arbitrary and mutated payloads to the pure parsers.

#[path = "listening/support.rs"]
mod support;

#[path = "listening/hackernews.rs"]
mod hackernews;
#[path = "listening/mastodon.rs"]
mod mastodon;
#[path = "listening/mastodon_publish.rs"]
mod mastodon_publish;
#[path = "listening/parsers.rs"]
mod parsers;
#[path = "listening/rss.rs"]
mod rss;
