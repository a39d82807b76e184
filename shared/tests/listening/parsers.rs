//! The pure parsers never panic: arbitrary bytes and damaged fixtures (truncated, bytes
//! flipped) give either a parse or a typed `Malformed` error.

use hark_shared::domain::Platform;
use hark_shared::platforms::{PlatformError, hackernews, mastodon, rss};
use proptest::prelude::*;

use crate::support::fixture;

const MASTODON: &[u8] = fixture!("mastodon/tag_timeline.json");
const HACKERNEWS: &[u8] = fixture!("hackernews/search_by_date.json");
const ATOM: &[u8] = fixture!("rss/google_alerts.atom.xml");
const RSS: &[u8] = fixture!("rss/blog.rss.xml");

/// `Ok`, or `Malformed` for the right platform with a non-empty explanation.
fn ok_or_malformed<T>(result: Result<T, PlatformError>, platform: Platform) -> Result<(), String> {
    match result {
        Ok(_) => Ok(()),
        Err(PlatformError::Malformed {
            platform: p,
            detail,
        }) if p == platform && !detail.is_empty() => Ok(()),
        Err(other) => Err(format!("unexpected error: {other:?}")),
    }
}

/// A fixture damaged at random: cut short, and/or some bytes replaced.
fn damaged(original: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (
        0..=original.len(),
        prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..8),
    )
        .prop_map(move |(cut, flips)| {
            let mut bytes = original[..cut].to_vec();
            for (at, mask) in flips {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] ^= mask;
                }
            }
            bytes
        })
}

#[test]
fn the_undamaged_fixtures_parse() {
    assert_eq!(mastodon::parse_statuses(MASTODON).unwrap().len(), 4);
    assert_eq!(hackernews::parse_page(HACKERNEWS).unwrap().hits.len(), 4);
    assert_eq!(rss::parse_feed(ATOM).unwrap().len(), 2);
    assert_eq!(rss::parse_feed(RSS).unwrap().len(), 3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_any_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        ok_or_malformed(mastodon::parse_statuses(&bytes), Platform::Mastodon).map_err(TestCaseError::fail)?;
        ok_or_malformed(hackernews::parse_page(&bytes), Platform::Hackernews).map_err(TestCaseError::fail)?;
        ok_or_malformed(rss::parse_feed(&bytes), Platform::Rss).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn damaged_mastodon_pages_are_parsed_or_malformed(bytes in damaged(MASTODON)) {
        ok_or_malformed(mastodon::parse_statuses(&bytes), Platform::Mastodon).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn damaged_hackernews_pages_are_parsed_or_malformed(bytes in damaged(HACKERNEWS)) {
        ok_or_malformed(hackernews::parse_page(&bytes), Platform::Hackernews).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn damaged_atom_feeds_are_parsed_or_malformed(bytes in damaged(ATOM)) {
        ok_or_malformed(rss::parse_feed(&bytes), Platform::Rss).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn damaged_rss_feeds_are_parsed_or_malformed(bytes in damaged(RSS)) {
        ok_or_malformed(rss::parse_feed(&bytes), Platform::Rss).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn xml_looking_noise_never_panics_the_feed_parser(text in "<(rss|feed|entry|item|channel)( version=\"2.0\")?>[<>/a-z&;#\"= ]{0,200}") {
        ok_or_malformed(rss::parse_feed(text.as_bytes()), Platform::Rss).map_err(TestCaseError::fail)?;
    }
}
