//! Text normalisation and tokenisation, shared by the parser (query terms) and the matcher
//! (mention texts) so that both sides of a comparison are cut and folded the same way.
//!
//! - **Normalisation** ([`normalize`]): simple Unicode lower-casing per character (`Straße` →
//!   `straße`, `Übung` → `übung`; no `ß` → `ss` folding), Greek final sigma folded to `σ`,
//!   `İ` to `i`, typographic apostrophes (`’`) folded to `'`, emoji presentation selectors
//!   (U+FE0E/U+FE0F) and skin-tone modifiers dropped so `👍🏽` and `👍` compare equal. No
//!   NFC/NFD normalisation: platforms deliver NFC text in practice.
//! - **Words**: the segments of Unicode word segmentation (UAX #29, via `unicode-segmentation`)
//!   that contain a letter, a digit or an emoji. Punctuation and spaces separate words, so
//!   `hark, the app` has the consecutive words `hark`, `the`, `app`; `sharks` and `hark.app`
//!   are single words that `hark` does not match. CJK ideographs are one word each.
//! - **Hashtags** in a text: `#` not preceded by a letter, digit, `_` or `&`, followed by
//!   letters, digits, `_` and combining marks (`#hark-app` is the tag `hark`).
//! - **Mentions** in a text: `@` not preceded by a letter, digit or `_`, followed by a handle
//!   (`alice`, `alice.bsky.social`) and optionally `@host` (`alice@mastodon.social`). An address
//!   like `bob@example.com` is not a mention.

use unicode_segmentation::UnicodeSegmentation;

/// Whether `c` is dropped by normalisation: emoji variation selectors and skin-tone modifiers.
fn is_ignorable(c: char) -> bool {
    matches!(c, '\u{FE0E}' | '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}')
}

/// Folds one lower-cased character further (see the module docs).
fn fold(c: char) -> char {
    match c {
        'ς' => 'σ',
        '\u{2018}' | '\u{2019}' => '\'',
        other => other,
    }
}

/// The normalised characters of `s`, lazily (no allocation): used to compare author handles.
pub(crate) fn normalized_chars(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars()
        .filter(|c| !is_ignorable(*c))
        // `İ` lower-cases to `i` + U+0307; fold it to `i` so `İstanbul` matches `istanbul`.
        .map(|c| if c == '\u{0130}' { 'i' } else { c })
        .flat_map(char::to_lowercase)
        .map(fold)
}

/// Normalises `s` for comparison: lower-cased and folded as described in the module docs.
pub fn normalize(s: &str) -> String {
    normalized_chars(s).collect()
}

/// Whether `c` is (roughly) an emoji: Unicode's Extended_Pictographic blocks and the common
/// symbols that have an emoji presentation. `unicode_words` drops these, but campaigns search
/// for them (`🎉`, `❤`), so they count as words here.
fn is_pictographic(c: char) -> bool {
    matches!(
        c,
        '\u{00A9}'
            | '\u{00AE}'
            | '\u{203C}'
            | '\u{2049}'
            | '\u{2122}'
            | '\u{2139}'
            | '\u{2194}'..='\u{21AA}'
            | '\u{2300}'..='\u{23FF}'
            | '\u{24C2}'
            | '\u{25A0}'..='\u{25FF}'
            | '\u{2600}'..='\u{27BF}'
            | '\u{2934}'..='\u{2935}'
            | '\u{2B00}'..='\u{2BFF}'
            | '\u{3030}'
            | '\u{303D}'
            | '\u{3297}'
            | '\u{3299}'
            | '\u{1F000}'..='\u{1FAFF}'
    )
}

/// Whether a word-segmentation segment is a word (it has a letter, digit or emoji).
pub(crate) fn is_word(segment: &str) -> bool {
    segment
        .chars()
        .any(|c| c.is_alphanumeric() || is_pictographic(c))
}

/// Whether `c` is a combining mark: it joins the preceding letter into one grapheme cluster
/// (Extend, SpacingMark, ZWJ). Needed so that hashtags like `#हिन्दी` keep their vowel signs.
fn is_combining(c: char) -> bool {
    if c.is_ascii() {
        return false;
    }
    let mut buf = [0u8; 8];
    buf[0] = b'a';
    let len = 1 + c.encode_utf8(&mut buf[1..]).len();
    match std::str::from_utf8(&buf[..len]) {
        Ok(pair) => pair.graphemes(true).nth(1).is_none(),
        Err(_) => false,
    }
}

/// Whether `c` may appear in a hashtag's name (after the `#`).
pub(crate) fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || is_combining(c)
}

/// Whether `c` may appear in the user part of a handle (`alice`, `alice.bsky.social`).
pub(crate) fn is_handle_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Whether `c` may appear in the host part of a handle (`mastodon.social`).
pub(crate) fn is_host_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '-')
}

/// The local part of a normalised handle: up to the first `@` or `.`
/// (`alice@host` → `alice`, `alice.bsky.social` → `alice`).
pub(crate) fn handle_local(handle: &str) -> &str {
    handle.split(['@', '.']).next().unwrap_or(handle)
}

/// Whether a normalised handle names only a user, with no host or domain (`alice`): such a query
/// account matches that user on any host.
pub(crate) fn is_local_only(handle: &str) -> bool {
    !handle.contains(['@', '.'])
}

/// The normalised words of `s`, in order (see the module docs).
pub(crate) fn words_of(s: &str) -> Vec<String> {
    normalize(s)
        .split_word_bounds()
        .filter(|segment| is_word(segment))
        .map(str::to_owned)
        .collect()
}

/// A byte range into [`PreparedText`]'s normalised text.
type Span = (usize, usize);

/// A text tokenised once for matching against many queries: normalised, cut into words,
/// hashtags and mentions. Build it once per mention and call [`Query::matches_prepared`] for
/// every campaign.
///
/// [`Query::matches_prepared`]: super::Query::matches_prepared
#[derive(Debug, Clone)]
pub struct PreparedText {
    /// The normalised text; every span below points into it.
    norm: String,
    /// The words in text order (for phrases).
    words: Vec<Span>,
    /// Sorted, distinct strings a single query word may match: the words, the parts of words
    /// around apostrophes (`hark's` → `hark`, `l'app` → `app`), hashtag names and mentioned
    /// handles with their local parts.
    word_set: Vec<Span>,
    /// Sorted, distinct hashtag names (without `#`).
    hashtags: Vec<Span>,
    /// Sorted, distinct mentioned handles (without `@`): `alice`, `alice@host`.
    mentions: Vec<Span>,
    /// Sorted, distinct local parts of the mentioned handles.
    mention_locals: Vec<Span>,
}

impl PreparedText {
    /// Normalises and tokenises `text`.
    pub fn new(text: &str) -> Self {
        let norm = normalize(text);
        let mut words = Vec::new();
        let mut extra = Vec::new();
        for (start, segment) in norm.split_word_bound_indices() {
            if !is_word(segment) {
                continue;
            }
            words.push((start, start + segment.len()));
            if segment.contains('\'') {
                let mut offset = start;
                for part in segment.split('\'') {
                    if is_word(part) {
                        extra.push((offset, offset + part.len()));
                    }
                    offset += part.len() + 1;
                }
            }
        }
        let hashtags = find_hashtags(&norm);
        let (mentions, mention_locals) = find_mentions(&norm);

        let mut word_set = words.clone();
        word_set.extend(extra);
        word_set.extend(&hashtags);
        word_set.extend(&mentions);
        word_set.extend(&mention_locals);

        PreparedText {
            word_set: sorted(&norm, word_set),
            hashtags: sorted(&norm, hashtags),
            mentions: sorted(&norm, mentions),
            mention_locals: sorted(&norm, mention_locals),
            words,
            norm,
        }
    }

    fn slice(&self, span: Span) -> &str {
        &self.norm[span.0..span.1]
    }

    fn contains(&self, set: &[Span], needle: &str) -> bool {
        set.binary_search_by(|span| self.slice(*span).cmp(needle))
            .is_ok()
    }

    /// The normalised words in text order.
    pub fn words(&self) -> impl Iterator<Item = &str> + '_ {
        self.words.iter().map(|span| self.slice(*span))
    }

    /// The distinct hashtag names in the text (normalised, without `#`, sorted).
    pub fn hashtags(&self) -> impl Iterator<Item = &str> + '_ {
        self.hashtags.iter().map(|span| self.slice(*span))
    }

    /// The distinct mentioned handles in the text (normalised, without `@`, sorted).
    pub fn mentions(&self) -> impl Iterator<Item = &str> + '_ {
        self.mentions.iter().map(|span| self.slice(*span))
    }

    /// Whether a single normalised query word occurs as a word (see [`PreparedText`]).
    pub(crate) fn has_word(&self, word: &str) -> bool {
        self.contains(&self.word_set, word)
    }

    /// Whether the normalised words occur consecutively, punctuation between them ignored.
    pub(crate) fn has_phrase(&self, phrase: &[String]) -> bool {
        if phrase.is_empty() || phrase.len() > self.words.len() {
            return phrase.is_empty();
        }
        self.words.windows(phrase.len()).any(|window| {
            window
                .iter()
                .zip(phrase)
                .all(|(span, word)| self.slice(*span) == word)
        })
    }

    /// Whether the text has the hashtag (normalised name, without `#`).
    pub(crate) fn has_hashtag(&self, tag: &str) -> bool {
        self.contains(&self.hashtags, tag)
    }

    /// Whether the text mentions the account (normalised handle, without `@`): a local-only
    /// handle matches the local part of any mention, a full handle matches exactly.
    pub(crate) fn has_mention(&self, handle: &str) -> bool {
        if is_local_only(handle) {
            self.contains(&self.mention_locals, handle)
        } else {
            self.contains(&self.mentions, handle)
        }
    }
}

/// `spans` sorted by the text they point at in `norm`, without repeated texts.
fn sorted(norm: &str, mut spans: Vec<Span>) -> Vec<Span> {
    let text = |span: &Span| &norm[span.0..span.1];
    spans.sort_unstable_by(|a, b| text(a).cmp(text(b)));
    spans.dedup_by(|a, b| text(a) == text(b));
    spans
}

/// The char before byte offset `at` in `s`, if any.
fn char_before(s: &str, at: usize) -> Option<char> {
    s[..at].chars().next_back()
}

/// The byte length of the longest prefix of `s` whose chars satisfy `accept`.
fn run_len(s: &str, accept: impl Fn(char) -> bool) -> usize {
    s.char_indices()
        .find(|(_, c)| !accept(*c))
        .map_or(s.len(), |(i, _)| i)
}

/// `len` shortened so that `s[..len]` does not end with `.` or `-` (trailing punctuation in
/// `thanks @alice.` is not part of the handle).
fn trim_trailing_dots(s: &str, len: usize) -> usize {
    s[..len].trim_end_matches(['.', '-']).len()
}

/// Hashtag names in a normalised text (see the module docs).
fn find_hashtags(norm: &str) -> Vec<Span> {
    let mut tags = Vec::new();
    for (at, _) in norm.match_indices('#') {
        if char_before(norm, at).is_some_and(|c| is_tag_char(c) || c == '&') {
            continue;
        }
        let start = at + 1;
        let len = run_len(&norm[start..], is_tag_char);
        if len > 0 {
            tags.push((start, start + len));
        }
    }
    tags
}

/// Mentioned handles and their local parts in a normalised text (see the module docs).
fn find_mentions(norm: &str) -> (Vec<Span>, Vec<Span>) {
    let mut full = Vec::new();
    let mut locals = Vec::new();
    for (at, _) in norm.match_indices('@') {
        if char_before(norm, at).is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let start = at + 1;
        let rest = &norm[start..];
        if !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let user_len = trim_trailing_dots(rest, run_len(rest, is_handle_char));
        let mut end = start + user_len;
        if let Some(after) = norm[end..].strip_prefix('@') {
            let host_len = trim_trailing_dots(after, run_len(after, is_host_char));
            if host_len > 0 && !after.starts_with(['.', '-']) {
                end += 1 + host_len;
            }
        }
        full.push((start, end));
        let local = handle_local(&norm[start..end]);
        locals.push((start, start + local.len()));
    }
    (full, locals)
}
