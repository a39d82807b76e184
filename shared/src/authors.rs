//! Opinion leaders: who talks about a campaign, ranked by reach, from its stored mentions.
//!
//! The ranking is computed when someone asks (a report reads the campaign's mentions of
//! its period anyway) rather than kept as running per-author counters. A counter per author
//! costs one DynamoDB write per campaign × author in every processed batch — authors rarely
//! repeat within a batch, so close to one write unit per mention, as much as storing the
//! mention itself — to answer a question asked a few times a day. Reading the mentions back
//! costs half a read unit per 4 KB (a few mentions) and only when a report is made, and it
//! ranks the authors of the period asked about rather than of all time. Counting stored
//! mentions also cannot count a redelivered mention twice: the store holds each mention once.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::domain::{Mention, Platform};

/// One author's figures over a set of mentions. The same handle on two platforms is two
/// authors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorStats {
    pub platform: Platform,
    /// The handle exactly as the platform reports it.
    pub handle: String,
    pub mentions: u64,
    /// Likes + reposts + replies over the author's mentions.
    pub engagement: u64,
    /// The largest follower count any of the mentions reported; `None` when none did.
    pub max_followers: Option<u64>,
    /// The newest of the author's mentions (`created_at`).
    pub last_seen: Timestamp,
}

/// The authors of `mentions`, most influential first: largest follower count (an unknown
/// count last), then most mentions, then most engagement, then handle and platform name (so
/// the order never depends on the input order). At most `limit` authors.
///
/// Mentions without an author handle (an RSS item with neither author nor link, a deleted
/// Hacker News account) are left out: lumping them together under "" would make a fake
/// influencer. Pass each mention once (e.g. from [`list_mentions`](crate::processing::list_mentions),
/// which already drops a mention listed by two timelines).
pub fn top_authors<'a>(
    mentions: impl IntoIterator<Item = &'a Mention>,
    limit: usize,
) -> Vec<AuthorStats> {
    let mut by_author: HashMap<(Platform, &'a str), AuthorStats> = HashMap::new();
    for m in mentions {
        let handle = m.author.handle.as_str();
        if handle.trim().is_empty() {
            continue;
        }
        let e = m.engagement;
        let engagement = e.likes.saturating_add(e.reposts).saturating_add(e.replies);
        by_author
            .entry((m.platform, handle))
            .and_modify(|s| {
                s.mentions += 1;
                s.engagement = s.engagement.saturating_add(engagement);
                s.max_followers = s.max_followers.max(m.author.followers);
                s.last_seen = s.last_seen.max(m.created_at);
            })
            .or_insert_with(|| AuthorStats {
                platform: m.platform,
                handle: handle.to_owned(),
                mentions: 1,
                engagement,
                max_followers: m.author.followers,
                last_seen: m.created_at,
            });
    }
    let mut ranked: Vec<AuthorStats> = by_author.into_values().collect();
    ranked.sort_by(|a, b| {
        b.max_followers
            .cmp(&a.max_followers)
            .then_with(|| b.mentions.cmp(&a.mentions))
            .then_with(|| b.engagement.cmp(&a.engagement))
            .then_with(|| a.handle.cmp(&b.handle))
            .then_with(|| a.platform.as_str().cmp(b.platform.as_str()))
    });
    ranked.truncate(limit);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Author, Engagement};

    fn mention(platform: Platform, id: &str, handle: &str, followers: Option<u64>) -> Mention {
        Mention {
            platform,
            native_id: id.to_owned(),
            url: format!("https://example.org/{id}"),
            author: Author {
                handle: handle.to_owned(),
                display_name: None,
                followers,
                url: None,
            },
            text: "Hark is great".to_owned(),
            created_at: at("2026-11-26T09:00:00Z"),
            lang: None,
            sentiment: None,
            engagement: Engagement::default(),
            campaigns: vec!["launch".to_owned()],
            source_id: None,
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn given_mentions_of_several_authors_then_each_author_is_summed_once_and_ranked_by_reach() {
        let mut a1 = mention(Platform::Mastodon, "1", "alice@remote.example", Some(120));
        a1.engagement = Engagement {
            likes: 3,
            reposts: 1,
            replies: 2,
        };
        a1.created_at = at("2026-11-26T10:00:00Z");
        // The follower count grew between the two mentions; a later mention without a
        // count does not erase it.
        let mut a2 = mention(Platform::Mastodon, "2", "alice@remote.example", Some(150));
        a2.engagement = Engagement {
            likes: 10,
            reposts: 0,
            replies: 0,
        };
        a2.created_at = at("2026-11-26T12:00:00Z");
        let mut a3 = mention(Platform::Mastodon, "3", "alice@remote.example", None);
        a3.created_at = at("2026-11-26T11:00:00Z");
        let big = mention(Platform::Bluesky, "b1", "grace.bsky.social", Some(250_000));
        let unknown = mention(Platform::Hackernews, "h1", "pg", None);

        let top = top_authors([&a1, &unknown, &a2, &big, &a3], 10);

        let names: Vec<&str> = top.iter().map(|s| s.handle.as_str()).collect();
        assert_eq!(names, ["grace.bsky.social", "alice@remote.example", "pg"]);
        let alice = &top[1];
        assert_eq!(alice.mentions, 3);
        assert_eq!(alice.engagement, 16);
        assert_eq!(alice.max_followers, Some(150));
        assert_eq!(alice.last_seen, at("2026-11-26T12:00:00Z"));
        assert_eq!(top[2].max_followers, None);
    }

    #[test]
    fn given_one_handle_on_two_platforms_then_they_are_two_authors() {
        let m = mention(Platform::Mastodon, "1", "sam", Some(5));
        let b = mention(Platform::Bluesky, "1", "sam", Some(5));
        let top = top_authors([&m, &b], 10);
        assert_eq!(top.len(), 2);
        // Equal on every figure: the platform name decides, whatever the input order.
        assert_eq!(top[0].platform, Platform::Bluesky);
        assert_eq!(top_authors([&b, &m], 10), top);
    }

    #[test]
    fn given_equal_followers_then_more_mentions_then_more_engagement_rank_higher() {
        let quiet = mention(Platform::Mastodon, "1", "quiet", Some(100));
        let busy1 = mention(Platform::Mastodon, "2", "busy", Some(100));
        let busy2 = mention(Platform::Mastodon, "3", "busy", Some(100));
        let mut liked = mention(Platform::Mastodon, "4", "liked", Some(100));
        liked.engagement.likes = 40;
        let top = top_authors([&quiet, &liked, &busy1, &busy2], 10);
        let names: Vec<&str> = top.iter().map(|s| s.handle.as_str()).collect();
        assert_eq!(names, ["busy", "liked", "quiet"]);
    }

    #[test]
    fn given_mentions_without_a_handle_then_no_nameless_author_is_made_up() {
        let nameless = mention(Platform::Rss, "r1", "  ", Some(1_000_000));
        let named = mention(Platform::Rss, "r2", "blog.example", None);
        let top = top_authors([&nameless, &named], 10);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].handle, "blog.example");
    }

    #[test]
    fn given_a_limit_then_only_the_top_ones_are_returned() {
        let ms: Vec<Mention> = (0..20)
            .map(|i| {
                mention(
                    Platform::Mastodon,
                    &i.to_string(),
                    &format!("u{i}"),
                    Some(i),
                )
            })
            .collect();
        let top = top_authors(&ms, 3);
        let followers: Vec<Option<u64>> = top.iter().map(|s| s.max_followers).collect();
        assert_eq!(followers, [Some(19), Some(18), Some(17)]);
        assert!(top_authors(&ms, 0).is_empty());
    }
}
