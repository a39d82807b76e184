//! Per-platform text limits: the one place that knows how long a post may be on each
//! platform and how the platform counts.
//!
//! The scheduler calls [`check_text`] for every delivery so a post that one channel cannot
//! take fails with a clear message per channel ("Bluesky allows 300 graphemes, this text has
//! 312 (12 over)") long before it is due; publishers call it again as a last guard.
//!
//! How each platform counts (see also `platform-apis.md` §0, §1.5, §2.3, §5.4, §10):
//!
//! | platform | limit | unit |
//! |---|---|---|
//! | Mastodon | 500, or the channel's `max_chars` | grapheme clusters; every URL counts 23, `@user@domain` counts as `@user` |
//! | Bluesky | 300 **and** 3000 | grapheme clusters **and** UTF-8 bytes |
//! | X | 280 | weighted characters (twitter-text v3: URLs 23, emoji/CJK 2) |
//! | Telegram | 4096 | UTF-16 code units |
//! | Discord | 2000 | characters (Unicode scalar values) |
//! | Slack | 40,000 | characters |
//! | LinkedIn | 3000 | UTF-16 code units |
//! | Facebook | 63,206 | UTF-16 code units |
//! | Reddit | 300 (the title) | characters |
//! | generic webhook | none | — |
//!
//! Where a platform does not document its unit we chose the count that is never smaller than
//! the platform's own (UTF-16 units ≥ code points), so a text we accept is not refused later.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

use crate::domain::Platform;

/// How a limit is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Extended grapheme clusters (what a reader sees as one character).
    Graphemes,
    /// Mastodon's count: grapheme clusters after every URL is replaced by 23 characters and
    /// every `@user@domain` by `@user`.
    MastodonCharacters,
    /// X's weighted count (twitter-text configuration v3).
    WeightedCharacters,
    /// Unicode scalar values (what most languages call characters).
    Characters,
    /// UTF-16 code units (an emoji outside the BMP counts 2).
    Utf16Units,
    /// UTF-8 bytes.
    Utf8Bytes,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Graphemes => "graphemes",
            Unit::MastodonCharacters => "characters (graphemes; each URL counts as 23)",
            Unit::WeightedCharacters => "weighted characters (URLs 23, emoji and CJK 2)",
            Unit::Characters => "characters",
            Unit::Utf16Units => "characters (UTF-16 code units)",
            Unit::Utf8Bytes => "UTF-8 bytes",
        })
    }
}

/// One limit of one platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub unit: Unit,
    pub max: usize,
}

/// Mastodon's default `max_characters` (instances may configure another value).
pub const MASTODON_DEFAULT_MAX: usize = 500;
/// Every URL counts this much on Mastodon (`characters_reserved_per_url`) and on X (t.co).
pub const URL_WEIGHT: usize = 23;

/// The platform's own limits, the first one being the one a channel's `max_chars` adjusts.
/// Empty for a generic webhook (no text limit) and for platforms Hark cannot publish to.
pub fn default_limits(platform: Platform) -> &'static [Limit] {
    match platform {
        Platform::Mastodon => &[Limit {
            unit: Unit::MastodonCharacters,
            max: MASTODON_DEFAULT_MAX,
        }],
        // Lexicon app.bsky.feed.post: text maxGraphemes 300, maxLength 3000 (UTF-8 bytes).
        Platform::Bluesky => &[
            Limit {
                unit: Unit::Graphemes,
                max: 300,
            },
            Limit {
                unit: Unit::Utf8Bytes,
                max: 3000,
            },
        ],
        Platform::X => &[Limit {
            unit: Unit::WeightedCharacters,
            max: 280,
        }],
        // core.telegram.org/bots/api#sendmessage: "1-4096 characters after entities
        // parsing". Telegram measures entities in UTF-16 code units, so we count those. Hark
        // sends no parse_mode, so the text is sent as-is.
        Platform::Telegram => &[Limit {
            unit: Unit::Utf16Units,
            max: 4096,
        }],
        // discord-api-docs webhook.mdx: content "up to 2000 characters".
        Platform::Discord => &[Limit {
            unit: Unit::Characters,
            max: 2000,
        }],
        // Slack truncates `text` after 40,000 characters; we refuse instead of truncating.
        Platform::Slack => &[Limit {
            unit: Unit::Characters,
            max: 40_000,
        }],
        // LinkedIn commentary is commonly limited to 3000 (platform-apis.md §7).
        Platform::Linkedin => &[Limit {
            unit: Unit::Utf16Units,
            max: 3000,
        }],
        // Facebook's 63,206 is folklore, not verified (platform-apis.md §0).
        Platform::Facebook => &[Limit {
            unit: Unit::Utf16Units,
            max: 63_206,
        }],
        // r2 `POST_submit`: title ≤ 300 characters; the delivery text is the title.
        Platform::Reddit => &[Limit {
            unit: Unit::Characters,
            max: 300,
        }],
        Platform::Webhook => &[],
        Platform::Hackernews | Platform::Rss | Platform::Youtube => &[],
    }
}

/// Why a text cannot be published on a platform. Messages name the platform, the limit and
/// by how much it was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextRuleError {
    #[error("{} cannot publish an empty text", display_name(*platform))]
    Empty { platform: Platform },
    #[error(
        "{} allows {limit} {unit}, this text has {length} ({} over)",
        display_name(*platform),
        length.saturating_sub(*limit)
    )]
    TooLong {
        platform: Platform,
        unit: Unit,
        limit: usize,
        length: usize,
    },
    #[error("{} is not a platform Hark publishes to", display_name(*platform))]
    NotPublishable { platform: Platform },
}

/// The measured text, for display ("212 of 300 graphemes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextStats {
    pub platform: Platform,
    /// The length in the unit of the platform's main limit (UTF-8 bytes for a webhook).
    pub length: usize,
    /// The main limit in force (after the channel's `max_chars`); `None` when unlimited.
    pub limit: Option<usize>,
    pub unit: Unit,
    /// UTF-8 bytes of the text as it will be sent.
    pub bytes: usize,
}

/// The text as it will be sent: the link appended after a space unless the text already
/// contains it. Every publisher sends exactly this, so the count here is the count there.
pub fn compose_text<'a>(text: &'a str, link: Option<&str>) -> Cow<'a, str> {
    match link.map(str::trim).filter(|l| !l.is_empty()) {
        Some(link) if !text.contains(link) => {
            let body = text.trim_end();
            if body.is_empty() {
                Cow::Owned(link.to_owned())
            } else {
                Cow::Owned(format!("{body} {link}"))
            }
        }
        _ => Cow::Borrowed(text),
    }
}

/// Checks the text (with `link` appended as [`compose_text`] does) against the platform's
/// limits.
///
/// `max_chars` is the channel's override: on Mastodon it replaces the default 500 (instances
/// differ, up or down); elsewhere it can only lower the platform's main limit, because the
/// platform enforces its own ceiling anyway.
pub fn check_text(
    platform: Platform,
    text: &str,
    link: Option<&str>,
    max_chars: Option<u32>,
) -> Result<TextStats, TextRuleError> {
    if !platform.can_publish() {
        return Err(TextRuleError::NotPublishable { platform });
    }
    let full = compose_text(text, link);
    if full.trim().is_empty() {
        return Err(TextRuleError::Empty { platform });
    }
    let limits = default_limits(platform);
    let bytes = full.len();
    let Some(main) = limits.first() else {
        return Ok(TextStats {
            platform,
            length: bytes,
            limit: None,
            unit: Unit::Utf8Bytes,
            bytes,
        });
    };
    let main_max = match max_chars.map(|m| usize::try_from(m).unwrap_or(usize::MAX)) {
        Some(m) if platform == Platform::Mastodon => m,
        Some(m) => m.min(main.max),
        None => main.max,
    };
    let main_length = measure(main.unit, &full);
    if main_length > main_max {
        return Err(TextRuleError::TooLong {
            platform,
            unit: main.unit,
            limit: main_max,
            length: main_length,
        });
    }
    for extra in &limits[1..] {
        let length = measure(extra.unit, &full);
        if length > extra.max {
            return Err(TextRuleError::TooLong {
                platform,
                unit: extra.unit,
                limit: extra.max,
                length,
            });
        }
    }
    Ok(TextStats {
        platform,
        length: main_length,
        limit: Some(main_max),
        unit: main.unit,
        bytes,
    })
}

/// The length of `text` in `unit`.
pub fn measure(unit: Unit, text: &str) -> usize {
    match unit {
        Unit::Graphemes => text.graphemes(true).count(),
        Unit::MastodonCharacters => mastodon_countable(text).graphemes(true).count(),
        Unit::WeightedCharacters => x_weighted_length(text),
        Unit::Characters => text.chars().count(),
        Unit::Utf16Units => text.encode_utf16().count(),
        Unit::Utf8Bytes => text.len(),
    }
}

/// The platform's name for messages ("Bluesky", not "bluesky").
pub fn display_name(platform: Platform) -> &'static str {
    match platform {
        Platform::Mastodon => "Mastodon",
        Platform::Bluesky => "Bluesky",
        Platform::Hackernews => "Hacker News",
        Platform::Reddit => "Reddit",
        Platform::Rss => "RSS",
        Platform::X => "X",
        Platform::Facebook => "Facebook",
        Platform::Youtube => "YouTube",
        Platform::Linkedin => "LinkedIn",
        Platform::Telegram => "Telegram",
        Platform::Discord => "Discord",
        Platform::Slack => "Slack",
        Platform::Webhook => "The webhook",
    }
}

// ---------------------------------------------------------------------------------------
// URL recogniser
// ---------------------------------------------------------------------------------------

/// Byte ranges of the `http://` / `https://` URLs in `text`, in order.
///
/// Deliberately simple, the same rule everywhere (Mastodon/X counting, Bluesky link facets):
/// - the scheme is `http://` or `https://` (any case), not glued to a preceding letter or
///   digit (`xhttps://` is not a URL);
/// - the URL runs to the next whitespace or one of `<>"` and must have a host (a letter or
///   digit right after `//`);
/// - trailing sentence punctuation `.,;:!?'` is not part of it, nor is a closing `)` or `]`
///   without its opening partner in the URL ("(see https://x.org/a)" ends before `)`).
///
/// Schemeless domains (`example.com`) are not URLs here; X's counting treats them
/// separately (see [`measure`]).
pub fn find_urls(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let scheme_len = if starts_with_ignore_case(rest, b"https://") {
            8
        } else if starts_with_ignore_case(rest, b"http://") {
            7
        } else {
            0
        };
        // The scheme is ASCII, so `i` is a char boundary whenever it matched.
        let glued = scheme_len > 0
            && text[..i]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
        if scheme_len == 0 || glued {
            i += 1;
            continue;
        }
        let start = i;
        let after_scheme = start + scheme_len;
        let end = text[after_scheme..]
            .char_indices()
            .find(|(_, c)| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
            .map_or(text.len(), |(offset, _)| after_scheme + offset);
        let end = trim_url_end(text, start, end);
        let has_host = text[after_scheme..end]
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric);
        if has_host {
            found.push(start..end);
            i = end;
        } else {
            i = after_scheme;
        }
    }
    found
}

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.len() >= prefix.len() && haystack[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Drops trailing punctuation that belongs to the sentence, not the URL.
fn trim_url_end(text: &str, start: usize, mut end: usize) -> usize {
    loop {
        let url = &text[start..end];
        let Some(last) = url.chars().next_back() else {
            return end;
        };
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' => true,
            ')' => url.matches('(').count() < url.matches(')').count(),
            ']' => url.matches('[').count() < url.matches(']').count(),
            _ => false,
        };
        if !drop {
            return end;
        }
        end -= last.len_utf8();
    }
}

// ---------------------------------------------------------------------------------------
// Mastodon
// ---------------------------------------------------------------------------------------

/// The text Mastodon counts (`StatusLengthValidator#countable_text`): every URL replaced by
/// 23 `x`, every `@user@domain` by `@user`.
fn mastodon_countable(text: &str) -> Cow<'_, str> {
    let urls = find_urls(text);
    let mentions = mastodon_remote_mentions(text, &urls);
    if urls.is_empty() && mentions.is_empty() {
        return Cow::Borrowed(text);
    }
    // Both lists are sorted and disjoint (mentions are only searched outside URLs).
    let mut edits: Vec<(Range<usize>, Cow<'_, str>)> = urls
        .into_iter()
        .map(|r| (r, Cow::Owned("x".repeat(URL_WEIGHT))))
        .chain(
            mentions
                .into_iter()
                .map(|(whole, local)| (whole, Cow::Borrowed(&text[local]))),
        )
        .collect();
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (range, replacement) in edits {
        out.push_str(&text[at..range.start]);
        out.push_str(&replacement);
        at = range.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Remote mentions `@user@domain` outside URLs, as (whole mention, the `@user` part).
///
/// Follows Mastodon's `Account::MENTION_RE`: the `@` is not preceded by a word character,
/// `=` or `/`; the user name is `[A-Za-z0-9_]` with inner `.`/`-`; the domain is word
/// characters, dots and dashes ending in a word character. Local mentions (`@user`) already
/// count as written, so only remote ones are returned.
fn mastodon_remote_mentions(
    text: &str,
    urls: &[Range<usize>],
) -> Vec<(Range<usize>, Range<usize>)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'@' || urls.iter().any(|u| u.contains(&i)) {
            i += 1;
            continue;
        }
        let preceded_ok = text[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(is_word(c) || c == '=' || c == '/'));
        let user_end = i + 1 + take_user(&bytes[i + 1..]);
        if !preceded_ok || user_end == i + 1 {
            i += 1;
            continue;
        }
        if bytes.get(user_end) == Some(&b'@') {
            let domain_len = take_domain(&text[user_end + 1..]);
            if domain_len > 0 {
                let end = user_end + 1 + domain_len;
                if !urls.iter().any(|u| u.start < end && i < u.end) {
                    found.push((i..end, i..user_end));
                    i = end;
                    continue;
                }
            }
        }
        i = user_end;
    }
    found
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Length of a Mastodon user name at the start of `bytes`: `[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?`.
fn take_user(bytes: &[u8]) -> usize {
    let simple = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if !bytes.first().copied().is_some_and(simple) {
        return 0;
    }
    let run = bytes
        .iter()
        .take_while(|b| simple(**b) || **b == b'.' || **b == b'-')
        .count();
    // The name must end in a word character.
    bytes[..run]
        .iter()
        .rposition(|b| simple(*b))
        .map_or(0, |p| p + 1)
}

/// Length of a domain at the start of `s`: word characters, `.` and `-`, ending in a word
/// character.
fn take_domain(s: &str) -> usize {
    let mut last_word_end = 0;
    for (offset, c) in s.char_indices() {
        if is_word(c) {
            last_word_end = offset + c.len_utf8();
        } else if c != '.' && c != '-' {
            break;
        }
    }
    last_word_end
}

// ---------------------------------------------------------------------------------------
// X (twitter-text v3 weighting)
// ---------------------------------------------------------------------------------------

/// twitter-text configuration v3: `scale` 100, `defaultWeight` 200, these ranges weigh 100
/// (i.e. count 1, everything else counts 2), `emojiParsingEnabled` (one emoji sequence
/// counts 2 however many code points it has), `transformedURLLength` 23.
/// <https://docs.x.com/fundamentals/counting-characters>
const X_LIGHT_RANGES: [(u32, u32); 4] = [
    (0x0000, 0x10FF), // Latin … Georgian
    (0x2000, 0x200D), // spaces, ZWJ
    (0x2010, 0x201F), // dashes, quotes
    (0x2032, 0x2037), // primes
];

fn x_char_weight(c: char) -> usize {
    let cp = c as u32;
    if X_LIGHT_RANGES
        .iter()
        .any(|(lo, hi)| (*lo..=*hi).contains(&cp))
    {
        1
    } else {
        2
    }
}

/// Whether a grapheme cluster is an emoji (sequence): a pictograph, a flag, a keycap, or
/// anything carrying the emoji variation selector or a skin-tone modifier.
fn is_emoji_cluster(cluster: &str) -> bool {
    let pictograph = |cp: u32| {
        matches!(cp,
            0x1F000..=0x1FAFF   // mahjong … symbols and pictographs extended-A
            | 0x2300..=0x23FF   // ⌚ ⏰ …
            | 0x2600..=0x27BF   // ☀ ✨ ❤ …
            | 0x2B00..=0x2BFF   // ⬛ ⭐ …
            | 0x3030 | 0x303D | 0x3297 | 0x3299)
    };
    cluster.chars().any(|c| {
        let cp = c as u32;
        pictograph(cp)
            || cp == 0xFE0F // emoji presentation selector
            || cp == 0x20E3 // combining enclosing keycap
            || (0x1F1E6..=0x1F1FF).contains(&cp) // regional indicators (flags)
    })
}

/// X's weighted length.
///
/// Differences from twitter-text, all on the safe side (we never count less than X):
/// - no NFC normalisation (no normaliser in our dependencies); a decomposed character
///   counts at least as much as its composed form under this table;
/// - a schemeless domain (`example.com`), which X may turn into a t.co link, counts
///   `max(its own weight, 23)` because we do not carry X's TLD list.
fn x_weighted_length(text: &str) -> usize {
    let urls = find_urls(text);
    let mut total = 0;
    let mut at = 0;
    for url in &urls {
        total += x_plain_weight(&text[at..url.start]);
        total += URL_WEIGHT;
        at = url.end;
    }
    total + x_plain_weight(&text[at..])
}

/// Weight of text without scheme URLs: words that look like domains count at least 23.
fn x_plain_weight(text: &str) -> usize {
    text.split_inclusive(char::is_whitespace)
        .map(|chunk| {
            let word = chunk.trim_end_matches(char::is_whitespace);
            let spaces = &chunk[word.len()..];
            let weight = clusters_weight(word);
            let weight = if looks_like_domain(word) {
                weight.max(URL_WEIGHT)
            } else {
                weight
            };
            weight + clusters_weight(spaces)
        })
        .sum()
}

fn clusters_weight(text: &str) -> usize {
    text.graphemes(true)
        .map(|g| {
            if is_emoji_cluster(g) {
                2
            } else {
                g.chars().map(x_char_weight).sum()
            }
        })
        .sum()
}

/// `label.label…tld` with ASCII letters/digits/hyphens, a TLD of at least two letters, an
/// optional path: what X might autolink without a scheme.
fn looks_like_domain(word: &str) -> bool {
    let word = word.trim_matches(|c: char| {
        matches!(
            c,
            '(' | ')' | '.' | ',' | ';' | ':' | '!' | '?' | '"' | '\''
        )
    });
    let host = word.split(['/', '?', '#']).next().unwrap_or_default();
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let labels_ok = labels
        .iter()
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let tld = labels.last().copied().unwrap_or_default();
    labels_ok && tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn urls(text: &str) -> Vec<&str> {
        find_urls(text).into_iter().map(|r| &text[r]).collect()
    }

    fn too_long(r: Result<TextStats, TextRuleError>) -> (Unit, usize, usize) {
        match r {
            Err(TextRuleError::TooLong {
                unit,
                limit,
                length,
                ..
            }) => (unit, limit, length),
            other => panic!("expected TooLong, got {other:?}"),
        }
    }

    // --- URL recogniser -----------------------------------------------------------------

    #[test]
    fn given_urls_in_prose_when_recognised_then_sentence_punctuation_is_left_out() {
        assert_eq!(
            urls("See https://example.com/a?b=1&c=%20#frag. And (http://x.org/wiki/A_(b)) ok"),
            [
                "https://example.com/a?b=1&c=%20#frag",
                "http://x.org/wiki/A_(b)"
            ]
        );
        assert_eq!(urls("HTTPS://EXAMPLE.COM!"), ["HTTPS://EXAMPLE.COM"]);
        assert_eq!(urls("<https://a.b/c>"), ["https://a.b/c"]);
    }

    #[test]
    fn given_things_that_are_not_urls_when_recognised_then_nothing_is_found() {
        assert!(urls("xhttps://example.com").is_empty());
        assert!(urls("https:// nothing").is_empty());
        assert!(urls("https://").is_empty());
        assert!(urls("example.com").is_empty());
        assert!(urls("mailto:someone@example.com").is_empty());
        // Multi-byte text around is stepped over, not sliced through.
        assert!(urls("𐣻").is_empty());
        assert_eq!(urls("𐣻 https://a.b/𐣻"), ["https://a.b/𐣻"]);
    }

    // --- composition ----------------------------------------------------------------------

    #[test]
    fn given_a_link_when_composed_then_appended_once() {
        assert_eq!(
            compose_text("Hello", Some("https://e.com")),
            "Hello https://e.com"
        );
        assert_eq!(
            compose_text("Read https://e.com today", Some("https://e.com")),
            "Read https://e.com today"
        );
        assert_eq!(compose_text("  ", Some("https://e.com")), "https://e.com");
        assert_eq!(compose_text("Hi\n", Some(" ")), "Hi\n");
        assert_eq!(compose_text("Hi", None), "Hi");
    }

    // --- empty and unpublishable ------------------------------------------------------------

    #[test]
    fn given_empty_or_blank_text_when_checked_then_empty_error_names_the_platform() {
        for text in ["", "   \n\t"] {
            let err = check_text(Platform::Discord, text, None, None).unwrap_err();
            assert_eq!(
                err,
                TextRuleError::Empty {
                    platform: Platform::Discord
                }
            );
            assert_eq!(err.to_string(), "Discord cannot publish an empty text");
        }
        // A link alone is a valid post.
        assert!(check_text(Platform::Discord, "", Some("https://e.com"), None).is_ok());
    }

    #[test]
    fn given_a_listening_only_platform_when_checked_then_not_publishable() {
        let err = check_text(Platform::Hackernews, "hi", None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Hacker News is not a platform Hark publishes to"
        );
    }

    // --- Mastodon ---------------------------------------------------------------------------

    #[test]
    fn given_mastodon_text_exactly_at_500_when_checked_then_ok_and_one_over_fails() {
        let ok = check_text(Platform::Mastodon, &"a".repeat(500), None, None).unwrap();
        assert_eq!((ok.length, ok.limit), (500, Some(500)));
        let (unit, limit, length) =
            too_long(check_text(Platform::Mastodon, &"a".repeat(501), None, None));
        assert_eq!((unit, limit, length), (Unit::MastodonCharacters, 500, 501));
    }

    #[test]
    fn given_mastodon_urls_when_counted_then_each_counts_23_whatever_its_length() {
        let long_url = format!("https://example.com/{}?q=rust&lang=en", "p".repeat(200));
        assert_eq!(measure(Unit::MastodonCharacters, &long_url), 23);
        assert_eq!(measure(Unit::MastodonCharacters, "go https://t.co"), 3 + 23);
        // 477 letters + space + a 200-character URL = 477 + 1 + 23 = 501.
        let text = format!("{} {long_url}", "a".repeat(477));
        assert_eq!(
            too_long(check_text(Platform::Mastodon, &text, None, None)).2,
            501
        );
        let text = format!("{} {long_url}", "a".repeat(476));
        assert!(check_text(Platform::Mastodon, &text, None, None).is_ok());
    }

    #[test]
    fn given_mastodon_remote_mentions_when_counted_then_only_the_local_part_counts() {
        assert_eq!(
            measure(Unit::MastodonCharacters, "hi @alice@instance.social!"),
            10
        );
        assert_eq!(measure(Unit::MastodonCharacters, "@bob"), 4);
        // An e-mail address is not a mention (the @ follows a word character).
        assert_eq!(
            measure(Unit::MastodonCharacters, "mail me@example.com"),
            "mail me@example.com".len()
        );
        // A mention-looking path inside a URL stays part of the URL.
        assert_eq!(
            measure(
                Unit::MastodonCharacters,
                "https://mastodon.social/@alice@example.org"
            ),
            23
        );
    }

    #[test]
    fn given_mastodon_max_chars_when_checked_then_it_replaces_the_default_both_ways() {
        let text = "a".repeat(600);
        assert!(check_text(Platform::Mastodon, &text, None, Some(1000)).is_ok());
        let err = check_text(Platform::Mastodon, &"a".repeat(101), None, Some(100)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Mastodon allows 100 characters"),
            "{err}"
        );
    }

    #[test]
    fn given_grapheme_clusters_when_counted_for_mastodon_then_each_cluster_is_one() {
        // family (ZWJ sequence), flag, e + combining acute, skin tone
        let text = "👨‍👩‍👧‍👦🇩🇪e\u{301}👍🏽";
        assert_eq!(measure(Unit::MastodonCharacters, text), 4);
    }

    // --- Bluesky ----------------------------------------------------------------------------

    #[test]
    fn given_bluesky_text_over_300_graphemes_when_checked_then_message_says_by_how_much() {
        let err = check_text(Platform::Bluesky, &"é".repeat(312), None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Bluesky allows 300 graphemes, this text has 312 (12 over)"
        );
        assert!(check_text(Platform::Bluesky, &"é".repeat(300), None, None).is_ok());
    }

    #[test]
    fn given_bluesky_emoji_text_within_300_graphemes_but_over_3000_bytes_then_bytes_limit_fails() {
        // The family emoji is 1 grapheme but 25 UTF-8 bytes: 121 of them are 3025 bytes.
        let family = "👨‍👩‍👧‍👦";
        assert_eq!(family.len(), 25);
        let text = family.repeat(121);
        let (unit, limit, length) = too_long(check_text(Platform::Bluesky, &text, None, None));
        assert_eq!((unit, limit, length), (Unit::Utf8Bytes, 3000, 3025));
        assert!(check_text(Platform::Bluesky, &family.repeat(120), None, None).is_ok());
    }

    #[test]
    fn given_bluesky_and_a_link_when_checked_then_the_appended_link_counts_in_full() {
        let link = format!("https://example.com/{}", "x".repeat(50)); // 70 graphemes
        let text = "a".repeat(229); // + space + 70 = 300
        let stats = check_text(Platform::Bluesky, &text, Some(&link), None).unwrap();
        assert_eq!(stats.length, 300);
        let text = "a".repeat(230);
        assert_eq!(
            too_long(check_text(Platform::Bluesky, &text, Some(&link), None)).2,
            301
        );
    }

    #[test]
    fn given_bluesky_max_chars_above_the_platform_limit_then_it_cannot_raise_it() {
        let text = "a".repeat(301);
        assert!(check_text(Platform::Bluesky, &text, None, Some(1000)).is_err());
        assert!(check_text(Platform::Bluesky, &"a".repeat(201), None, Some(200)).is_err());
    }

    // --- X ----------------------------------------------------------------------------------

    #[test]
    fn given_x_latin_cjk_and_emoji_when_weighed_then_follow_twitter_text_v3() {
        assert_eq!(measure(Unit::WeightedCharacters, "Hello"), 5);
        assert_eq!(measure(Unit::WeightedCharacters, "日本語"), 6);
        assert_eq!(measure(Unit::WeightedCharacters, "한국어"), 6);
        // One emoji sequence counts 2 however many code points (ZWJ family = 7).
        assert_eq!(measure(Unit::WeightedCharacters, "👨‍👩‍👧‍👦"), 2);
        assert_eq!(measure(Unit::WeightedCharacters, "👍🏽"), 2);
        assert_eq!(measure(Unit::WeightedCharacters, "🇯🇵"), 2);
        assert_eq!(measure(Unit::WeightedCharacters, "1\u{FE0F}\u{20E3}"), 2);
        // Curly quotes and dashes are in the light ranges.
        assert_eq!(measure(Unit::WeightedCharacters, "“—”"), 3);
        // Latin with a combining mark counts per code point (no NFC): never less than X.
        assert_eq!(measure(Unit::WeightedCharacters, "e\u{301}"), 2);
    }

    #[test]
    fn given_x_urls_when_weighed_then_each_counts_23() {
        let url = format!("https://example.com/{}?utm_source=x&id=42", "a".repeat(80));
        assert_eq!(measure(Unit::WeightedCharacters, &url), 23);
        assert_eq!(
            measure(Unit::WeightedCharacters, &format!("see {url}.")),
            4 + 23 + 1
        );
        // A bare domain may become a t.co link: it counts at least 23.
        assert_eq!(measure(Unit::WeightedCharacters, "example.com"), 23);
        assert_eq!(measure(Unit::WeightedCharacters, "e.g. this"), 9);
    }

    #[test]
    fn given_x_text_at_exactly_280_when_checked_then_ok_and_one_more_fails() {
        assert!(check_text(Platform::X, &"中".repeat(140), None, None).is_ok());
        let (unit, limit, length) = too_long(check_text(
            Platform::X,
            &"中".repeat(140).add_char('a'),
            None,
            None,
        ));
        assert_eq!((unit, limit, length), (Unit::WeightedCharacters, 280, 281));
        assert!(check_text(Platform::X, &"a".repeat(280), None, None).is_ok());
        assert_eq!(
            too_long(check_text(Platform::X, &"🦀".repeat(141), None, None)).2,
            282
        );
    }

    trait AddChar {
        fn add_char(self, c: char) -> String;
    }
    impl AddChar for String {
        fn add_char(mut self, c: char) -> String {
            self.push(c);
            self
        }
    }

    // --- the others ---------------------------------------------------------------------------

    #[test]
    fn given_telegram_text_when_checked_then_utf16_units_count() {
        // 🦀 is outside the BMP: 2 UTF-16 units.
        assert!(check_text(Platform::Telegram, &"🦀".repeat(2048), None, None).is_ok());
        let err = check_text(Platform::Telegram, &"🦀".repeat(2049), None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Telegram allows 4096 characters (UTF-16 code units), this text has 4098 (2 over)"
        );
    }

    #[test]
    fn given_discord_content_at_2000_when_checked_then_ok_and_2001_fails() {
        assert!(check_text(Platform::Discord, &"ü".repeat(2000), None, None).is_ok());
        let err = check_text(Platform::Discord, &"ü".repeat(2001), None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Discord allows 2000 characters, this text has 2001 (1 over)"
        );
    }

    #[test]
    fn given_the_remaining_platforms_when_one_over_then_each_reports_its_limit() {
        for (platform, max) in [
            (Platform::Slack, 40_000),
            (Platform::Linkedin, 3000),
            (Platform::Facebook, 63_206),
            (Platform::Reddit, 300),
        ] {
            assert!(
                check_text(platform, &"a".repeat(max), None, None).is_ok(),
                "{platform}"
            );
            let (_, limit, length) =
                too_long(check_text(platform, &"a".repeat(max + 1), None, None));
            assert_eq!((limit, length), (max, max + 1), "{platform}");
        }
        // A generic webhook has no text limit.
        let stats = check_text(Platform::Webhook, &"a".repeat(100_000), None, None).unwrap();
        assert_eq!(stats.limit, None);
    }

    // --- properties ---------------------------------------------------------------------------

    proptest! {
        #[test]
        fn any_text_on_any_platform_never_panics(text in any::<String>(), link in proptest::option::of(any::<String>()), max in proptest::option::of(any::<u32>())) {
            for platform in Platform::ALL {
                let _ = check_text(platform, &text, link.as_deref(), max);
            }
            let _ = find_urls(&text);
        }

        #[test]
        fn counts_never_exceed_the_byte_length(text in any::<String>()) {
            let bytes = text.len();
            prop_assert!(measure(Unit::Graphemes, &text) <= measure(Unit::Characters, &text));
            prop_assert!(measure(Unit::Characters, &text) <= measure(Unit::Utf16Units, &text));
            prop_assert!(measure(Unit::Utf16Units, &text) <= bytes);
            prop_assert_eq!(measure(Unit::Utf8Bytes, &text), bytes);
        }

        #[test]
        fn without_urls_weighted_and_mastodon_counts_are_bounded(text in "[^.:@]*") {
            // No URL, domain or mention can appear without '.', ':' or '@'.
            prop_assert!(measure(Unit::MastodonCharacters, &text) <= text.len());
            prop_assert!(measure(Unit::WeightedCharacters, &text) <= 2 * text.chars().count());
        }

        #[test]
        fn recognised_urls_are_in_bounds_ordered_and_on_char_boundaries(text in "(https?://[a-z.]{0,8}[ ()?.,a-zé]{0,6}){0,4}|.*") {
            let mut last_end = 0;
            for r in find_urls(&text) {
                prop_assert!(r.start >= last_end && r.start < r.end && r.end <= text.len());
                prop_assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end));
                last_end = r.end;
            }
        }
    }
}
