//! The publishing clients (Bluesky, Telegram, Discord, Slack, signed webhooks), each run
//! against a wiremock fake that reproduces the platform's documented behaviour, error bodies
//! included, plus property tests feeding arbitrary bytes to the response parsers.

#[path = "publishing/support.rs"]
mod support;

#[path = "publishing/fake_pds.rs"]
mod fake_pds;

#[path = "publishing/bluesky.rs"]
mod bluesky;
#[path = "publishing/discord.rs"]
mod discord;
#[path = "publishing/parsers.rs"]
mod parsers;
#[path = "publishing/slack.rs"]
mod slack;
#[path = "publishing/telegram.rs"]
mod telegram;
#[path = "publishing/webhook.rs"]
mod webhook;
