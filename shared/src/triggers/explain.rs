//! What goes into a firing's explanation besides the figures: the terms people used most
//! in the window, and a few mentions that show it.

use std::collections::{BTreeMap, HashSet};

use crate::domain::{Mention, SentimentLabel};
use crate::events::{SampleMention, TermCount};

/// Words too common to say anything (English and German, the languages Hark scores).
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "her", "was", "one",
    "our", "out", "has", "have", "had", "him", "his", "how", "its", "may", "new", "now", "old",
    "see", "two", "way", "who", "did", "get", "got", "let", "say", "she", "too", "use", "this",
    "that", "with", "from", "they", "will", "would", "there", "their", "what", "about", "which",
    "when", "your", "just", "been", "were", "than", "then", "them", "into", "more", "some", "only",
    "also", "very", "much", "even", "still", "here", "after", "before", "because", "could",
    "should", "does", "doing", "being", "over", "again", "it's", "i'm", "don't", "can't", "isn't",
    "der", "die", "das", "und", "ist", "nicht", "ein", "eine", "mit", "auf", "für", "von", "den",
    "dem", "des", "sich", "auch", "wie", "noch", "nur", "aber", "wir", "ich", "sie", "mir", "mich",
    "dass", "schon", "bei", "nach", "aus", "wird", "sind", "hat", "habe", "kann", "jetzt", "mein",
    "meine", "meinen", "meiner", "dein", "deine", "alle", "alles", "heute", "wurde", "werden",
    "einen", "einem", "keine", "kein", "wenn", "oder", "mal", "ganz", "sehr", "seit", "https",
    "http", "www", "com",
];

/// The `n` most frequent terms and hashtags of `mentions` (each mention counts a term
/// once), leaving out stop words and the campaign's own query words (every mention has
/// those). Ties are broken alphabetically so the result is stable.
pub fn top_terms(mentions: &[&Mention], query_source: &str, n: usize) -> Vec<TermCount> {
    let query_words: HashSet<String> = words(query_source).collect();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for m in mentions {
        let unique: HashSet<String> = words(&m.text)
            .filter(|w| {
                let bare = w.trim_start_matches('#');
                bare.chars().count() >= 3
                    && !STOPWORDS.contains(&bare)
                    && !query_words.contains(w)
                    && !query_words.contains(bare)
                    && !bare.chars().all(|c| c.is_ascii_digit())
            })
            .collect();
        for w in unique {
            *counts.entry(w).or_default() += 1;
        }
    }
    let mut ranked: Vec<(String, u64)> = counts.into_iter().filter(|(_, c)| *c >= 2).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .take(n)
        .map(|(term, count)| TermCount { term, count })
        .collect()
}

/// Lower-cased words (letters, digits, `'`), hashtags keep their `#`; URLs are skipped.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace()
        .filter(|t| !t.contains("://") && !t.starts_with("www."))
        .flat_map(|token| {
            let mut out = Vec::new();
            let mut current = String::new();
            let mut hashtag = false;
            for c in token.chars() {
                if c == '#' && current.is_empty() {
                    hashtag = true;
                } else if c.is_alphanumeric() || (c == '\'' && !current.is_empty()) {
                    current.extend(c.to_lowercase());
                } else if !current.is_empty() {
                    out.push(finish(&mut current, hashtag));
                    hashtag = false;
                }
            }
            if !current.is_empty() {
                out.push(finish(&mut current, hashtag));
            }
            out
        })
}

fn finish(current: &mut String, hashtag: bool) -> String {
    let word = current.trim_end_matches('\'').to_owned();
    current.clear();
    if hashtag { format!("#{word}") } else { word }
}

/// Longest quote in a sample, in characters.
pub const SAMPLE_CHARS: usize = 200;

/// Up to `n` mentions that show what the rule saw: for a negative-share rule the most
/// negative, otherwise the most followed authors (then the newest).
pub fn samples(mentions: &[&Mention], negative_first: bool, n: usize) -> Vec<SampleMention> {
    let mut ranked: Vec<&Mention> = mentions.to_vec();
    if negative_first {
        ranked.retain(|m| {
            m.sentiment
                .is_some_and(|s| s.label == SentimentLabel::Negative)
        });
        ranked.sort_by(|a, b| {
            let ca = a.sentiment.map_or(0.0, |s| s.compound);
            let cb = b.sentiment.map_or(0.0, |s| s.compound);
            ca.total_cmp(&cb)
                .then_with(|| b.created_at.cmp(&a.created_at))
        });
    } else {
        ranked.sort_by(|a, b| {
            b.author
                .followers
                .cmp(&a.author.followers)
                .then_with(|| b.created_at.cmp(&a.created_at))
        });
    }
    ranked.into_iter().take(n).map(sample).collect()
}

/// One mention as a sample.
pub fn sample(m: &Mention) -> SampleMention {
    SampleMention {
        platform: m.platform,
        url: m.url.clone(),
        author: m.author.handle.clone(),
        text: quote(&m.text),
        sentiment: m.sentiment.map(|s| s.label),
        followers: m.author.followers,
    }
}

fn quote(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= SAMPLE_CHARS {
        return one_line;
    }
    let cut: String = one_line.chars().take(SAMPLE_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Author, Engagement, Platform, Sentiment};

    fn mention(id: &str, text: &str, compound: f64, followers: Option<u64>) -> Mention {
        Mention {
            platform: Platform::Bluesky,
            native_id: id.into(),
            url: format!("https://bsky.app/profile/a/post/{id}"),
            author: Author {
                handle: format!("a{id}"),
                followers,
                ..Author::default()
            },
            text: text.into(),
            created_at: "2026-03-02T10:00:00Z".parse().unwrap(),
            lang: Some("en".into()),
            sentiment: Some(Sentiment {
                label: if compound <= -0.05 {
                    SentimentLabel::Negative
                } else {
                    SentimentLabel::Neutral
                },
                compound,
                pos: 0.0,
                neu: 1.0,
                neg: 0.0,
            }),
            engagement: Engagement::default(),
            campaigns: vec![],
            source_id: None,
        }
    }

    #[test]
    fn given_mentions_then_top_terms_skip_stopwords_query_words_and_urls() {
        let a = mention(
            "1",
            "Hark crashed again, the sync is broken #harkfail https://x.example/a",
            -0.6,
            None,
        );
        let b = mention(
            "2",
            "Sync broken after the update. Hark please fix! #HarkFail",
            -0.5,
            None,
        );
        let c = mention("3", "hark update broke my sync", -0.4, None);
        let terms = top_terms(&[&a, &b, &c], "hark OR #harkapp", 3);
        let names: Vec<&str> = terms.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(names, vec!["sync", "#harkfail", "broken"]);
        assert_eq!(terms[0].count, 3);
        assert!(!names.contains(&"the") && !names.contains(&"hark"));
    }

    #[test]
    fn given_negative_samples_then_the_most_negative_come_first_and_quotes_are_short() {
        let long = "terrible ".repeat(60);
        let a = mention("1", "meh", -0.1, None);
        let b = mention("2", &long, -0.9, None);
        let c = mention("3", "fine", 0.3, Some(1_000_000));
        let s = samples(&[&a, &b, &c], true, 5);
        assert_eq!(
            s.len(),
            2,
            "only negative mentions are samples of a negative wave"
        );
        assert_eq!(s[0].url, "https://bsky.app/profile/a/post/2");
        assert_eq!(s[0].text.chars().count(), SAMPLE_CHARS);
        assert!(s[0].text.ends_with('…'));
        let s = samples(&[&a, &b, &c], false, 1);
        assert_eq!(s[0].followers, Some(1_000_000));
    }
}
