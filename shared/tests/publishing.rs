//! The publishing clients (Bluesky, Telegram, Discord, Slack, signed webhooks), each run
//! against a wiremock fake that reproduces the platform's documented behaviour, error bodies
//! included, plus property tests feeding arbitrary bytes to the response parsers.

#[path = "publishing/support.rs"]
mod support;

// The one stateful fake Bluesky PDS, shared with the end-to-end suites (this crate's tests
// cannot depend on hark-tests, so the file is included by path), with the faults it uses.
#[allow(dead_code)]
#[path = "../../tests/src/fakes/bluesky.rs"]
mod bluesky_fake;
#[allow(dead_code)]
#[path = "../../tests/src/fakes/faults.rs"]
mod faults;

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
