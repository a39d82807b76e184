//! English sentiment: vaderSentiment 3.3.2, reproduced exactly by the `vader-parity` crate.
//!
//! `shared/tests/sentiment_parity.rs` checks every line of the reference file (39,911 texts
//! scored by the Python package) at the reference's precision.

use std::sync::LazyLock;

use vader_parity::SentimentIntensityAnalyzer;

use crate::domain::{Sentiment, SentimentLabel};

/// `compound` at or above this is positive (the threshold VADER's authors recommend).
pub const POSITIVE_THRESHOLD: f64 = 0.05;
/// `compound` at or below this is negative.
pub const NEGATIVE_THRESHOLD: f64 = -0.05;

/// Parsed once per process: construction reads about 11,000 lexicon lines.
static VADER: LazyLock<SentimentIntensityAnalyzer> = LazyLock::new(SentimentIntensityAnalyzer::new);

/// Score an English text. `compound` (4 decimals) and `pos`/`neu`/`neg` (3 decimals) are
/// vaderSentiment 3.3.2's values; the label follows [`label_for_compound`].
pub fn score(text: &str) -> Sentiment {
    let scores = VADER.polarity_scores(text);
    Sentiment {
        label: label_for_compound(scores.compound),
        compound: scores.compound,
        pos: scores.pos,
        neu: scores.neu,
        neg: scores.neg,
    }
}

/// VADER's usual classes: `compound ≥ 0.05` positive, `≤ -0.05` negative, else neutral.
pub fn label_for_compound(compound: f64) -> SentimentLabel {
    if compound >= POSITIVE_THRESHOLD {
        SentimentLabel::Positive
    } else if compound <= NEGATIVE_THRESHOLD {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_readme_sentence_then_the_scores_are_vaders() {
        let s = score("VADER is smart, handsome, and funny.");
        assert_eq!(s.label, SentimentLabel::Positive);
        assert_eq!(
            (s.compound, s.pos, s.neu, s.neg),
            (0.8316, 0.746, 0.254, 0.0)
        );
    }

    #[test]
    fn given_compounds_at_the_thresholds_then_the_bounds_are_inclusive() {
        assert_eq!(label_for_compound(0.05), SentimentLabel::Positive);
        assert_eq!(label_for_compound(0.0499), SentimentLabel::Neutral);
        assert_eq!(label_for_compound(0.0), SentimentLabel::Neutral);
        assert_eq!(label_for_compound(-0.0499), SentimentLabel::Neutral);
        assert_eq!(label_for_compound(-0.05), SentimentLabel::Negative);
    }

    #[test]
    fn given_a_negative_sentence_with_emoji_then_it_is_negative() {
        let s = score("The update broke everything 😡 worst release ever");
        assert_eq!(s.label, SentimentLabel::Negative);
        assert!(s.compound <= NEGATIVE_THRESHOLD, "{s:?}");
    }
}
