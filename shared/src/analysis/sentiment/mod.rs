//! Sentiment scoring per language, into the domain's [`Sentiment`].
//!
//! - English: [`english`], exactly vaderSentiment 3.3.2.
//! - German: [`german`], a compact classifier trained by `shared/examples/train_german.rs`
//!   and embedded in the binary.
//! - Anything else: [`unscored`]. No score is made up for a language without a model.

use crate::domain::{Sentiment, SentimentLabel};

pub mod english;
pub mod german;

/// The "no score" value: label [`SentimentLabel::Unknown`] and every number 0.0.
///
/// The domain type has required numbers, so "not scored" is carried by the label alone:
/// consumers must check the label before reading `compound` or the proportions (hourly
/// aggregates count these mentions as `unscored`, not as neutral).
pub fn unscored() -> Sentiment {
    Sentiment {
        label: SentimentLabel::Unknown,
        compound: 0.0,
        pos: 0.0,
        neu: 0.0,
        neg: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_no_model_then_the_unscored_value_is_unknown_with_zeros() {
        let s = unscored();
        assert_eq!(s.label, SentimentLabel::Unknown);
        assert_eq!([s.compound, s.pos, s.neu, s.neg], [0.0; 4]);
    }
}
