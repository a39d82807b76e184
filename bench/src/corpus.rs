//! Mention texts for the benchmarks: the 4,200 human-rated tweets of the VADER paper
//! (`en/vader_tweets_human.tsv`) and German tweets (`de/train.tsv`), mixed 4:1 English to
//! German. Real texts matter: sentiment, language detection and campaign matching cost
//! what they cost on real mentions, and item sizes (the cost model) follow real lengths.
//!
//! The data directory is `$HARK_SENTIMENT_DATA`, else `<repo>/../shared/data/sentiment`.

use std::path::PathBuf;

/// Texts and their platform language tags.
pub struct Corpus {
    english: Vec<String>,
    german: Vec<String>,
}

impl Corpus {
    pub fn load() -> Result<Self, String> {
        let dir = std::env::var_os("HARK_SENTIMENT_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../shared/data/sentiment"
                ))
            });
        let read = |rel: &str| {
            let path = dir.join(rel);
            std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "cannot read {} (set HARK_SENTIMENT_DATA): {e}",
                    path.display()
                )
            })
        };
        // id <TAB> mean_rating <TAB> text, with a header line.
        let english: Vec<String> = read("en/vader_tweets_human.tsv")?
            .lines()
            .skip(1)
            .filter_map(|l| l.splitn(3, '\t').nth(2))
            .map(str::to_owned)
            .collect();
        let german = hark_shared::analysis::sentiment::german::parse_corpus(&read("de/train.tsv")?)
            .map_err(|e| format!("de/train.tsv: {e}"))?
            .into_iter()
            .map(|r| r.text)
            .collect::<Vec<_>>();
        if english.is_empty() || german.is_empty() {
            return Err(format!("no texts under {}", dir.display()));
        }
        Ok(Corpus { english, german })
    }

    /// The `i`-th text and its language tag (one in five German).
    pub fn pick(&self, i: usize) -> (&str, &'static str) {
        if i % 5 == 4 {
            (&self.german[(i / 5) % self.german.len()], "de")
        } else {
            (&self.english[i % self.english.len()], "en")
        }
    }

    /// Mean length in characters of the texts `pick` cycles through (for the Comprehend row).
    pub fn mean_chars(&self, n: usize) -> f64 {
        let total: usize = (0..n).map(|i| self.pick(i).0.chars().count()).sum();
        total as f64 / n.max(1) as f64
    }
}
