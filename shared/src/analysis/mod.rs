//! Text analysis for mentions: language detection and sentiment.
//!
//! [`Analyzer`] is the one entry point the processor and `hark analyze` share, so a text gets
//! the same language and score wherever it is analysed:
//!
//! 1. the language is forced by the caller or detected among the enabled [`Languages`]
//!    (`und` when unreliable);
//! 2. English is scored exactly like vaderSentiment 3.3.2, German by the embedded model, and
//!    every other language (and `und`) is left unscored: [`SentimentLabel::Unknown`] with
//!    all numbers 0.0 — consumers must check the label (see [`sentiment::unscored`]).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::{Sentiment, SentimentLabel};

pub mod language;
pub mod sentiment;

pub use language::{
    DEFAULT_LANGUAGES, LangGuess, Language, LanguageError, Languages, UNDETERMINED, detect_language,
};
pub use sentiment::german::{GermanModel, ModelError};

/// Why an [`Analyzer`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AnalyzerError {
    /// The German model embedded in this binary failed validation (a broken build).
    #[error("the embedded German sentiment model is unusable")]
    GermanModel(#[source] ModelError),
}

/// The language and sentiment of one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// ISO 639-1 code, or `und`.
    pub lang: String,
    pub sentiment: Sentiment,
}

/// Detects the language of a text and scores its sentiment.
#[derive(Debug, Clone)]
pub struct Analyzer {
    languages: Languages,
    german: &'static GermanModel,
}

impl Analyzer {
    /// An analyzer that detects among `languages`. Fails only if the embedded German model
    /// is corrupt, which the crate's tests rule out for a released build.
    pub fn new(languages: Languages) -> Result<Self, AnalyzerError> {
        let german = sentiment::german::embedded().map_err(AnalyzerError::GermanModel)?;
        Ok(Self { languages, german })
    }

    /// The languages detection may answer with.
    pub fn languages(&self) -> &Languages {
        &self.languages
    }

    /// Analyse one text.
    ///
    /// `forced_lang` (an ISO 639-1 code, e.g. from `hark analyze --lang de`) skips detection
    /// and is used even if it is not among the enabled languages; a code that is not a known
    /// ISO 639-1 code counts as `und` (validate user input with [`Language::from_code`]
    /// first to report it). Text without any non-blank character is never scored.
    pub fn analyze(&self, text: &str, forced_lang: Option<&str>) -> Analysis {
        let language = match forced_lang {
            Some(code) => Language::from_code(code).ok(),
            None => self.languages.detect(text).language(),
        };
        let sentiment = match language {
            _ if text.trim().is_empty() => sentiment::unscored(),
            Some(language::ENGLISH) => sentiment::english::score(text),
            Some(language::GERMAN) => self.german.score(text),
            _ => sentiment::unscored(),
        };
        Analysis {
            lang: language.map_or(UNDETERMINED, Language::code).to_owned(),
            sentiment,
        }
    }
}

/// Whether a sentiment carries a score (anything but [`SentimentLabel::Unknown`]).
pub fn is_scored(sentiment: &Sentiment) -> bool {
    sentiment.label != SentimentLabel::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn analyzer() -> Analyzer {
        Analyzer::new(Languages::default()).expect("embedded model is valid")
    }

    #[test]
    fn given_english_text_then_it_is_english_scored_by_vader() {
        let a = analyzer().analyze(
            "I absolutely love the new dashboard, the team did a fantastic job with it!",
            None,
        );
        assert_eq!(a.lang, "en");
        assert_eq!(a.sentiment.label, SentimentLabel::Positive);
        assert_eq!(
            a.sentiment,
            sentiment::english::score(
                "I absolutely love the new dashboard, the team did a fantastic job with it!"
            )
        );
    }

    #[test]
    fn given_german_text_with_umlauts_then_it_is_german_scored_by_the_model() {
        let text = "Ich bin total enttäuscht, der Kundenservice ist eine Katastrophe und völlig überfordert.";
        let a = analyzer().analyze(text, None);
        assert_eq!(a.lang, "de");
        assert_eq!(a.sentiment.label, SentimentLabel::Negative, "{a:?}");
        assert_eq!(
            a.sentiment,
            sentiment::german::embedded().unwrap().score(text)
        );
        let total = a.sentiment.pos + a.sentiment.neu + a.sentiment.neg;
        assert!((total - 1.0).abs() < 1e-9, "{a:?}");
    }

    #[test]
    fn given_german_text_with_emoji_then_it_is_positive() {
        let a = analyzer().analyze(
            "Endlich ist das Paket angekommen, ich freue mich riesig darüber 😍🎉",
            None,
        );
        assert_eq!(a.lang, "de");
        assert_eq!(a.sentiment.label, SentimentLabel::Positive, "{a:?}");
    }

    #[test]
    fn given_english_text_with_emoji_then_vader_reads_the_emoji() {
        let a = analyzer().analyze("Just got my order and the packaging was 😍", None);
        assert_eq!(a.lang, "en");
        assert_eq!(a.sentiment.label, SentimentLabel::Positive, "{a:?}");
    }

    #[test]
    fn given_a_language_enabled_without_a_model_then_it_is_detected_but_unscored() {
        let analyzer = Analyzer::new(Languages::from_codes(["en", "de", "fr"]).unwrap()).unwrap();
        let a = analyzer.analyze(
            "Le service client est vraiment excellent, je suis très content de mon achat.",
            None,
        );
        assert_eq!(a.lang, "fr");
        assert_eq!(a.sentiment, sentiment::unscored());
        assert!(!is_scored(&a.sentiment));
    }

    #[test]
    fn given_undetermined_text_then_the_lang_is_und_and_nothing_is_scored() {
        for text in ["", "   ", "ok", "👍👍", "Αυτό είναι ένα πολύ ωραίο προϊόν."]
        {
            let a = analyzer().analyze(text, None);
            assert_eq!(a.lang, "und", "{text:?}");
            assert_eq!(a.sentiment, sentiment::unscored(), "{text:?}");
        }
    }

    #[test]
    fn given_a_forced_language_then_detection_is_skipped() {
        // Detection calls this English; the caller knows better.
        let text = "Super Produkt, love it";
        assert_eq!(analyzer().analyze(text, None).lang, "en");
        let forced = analyzer().analyze(text, Some("de"));
        assert_eq!(forced.lang, "de");
        assert_eq!(
            forced.sentiment,
            sentiment::german::embedded().unwrap().score(text)
        );

        let forced = analyzer().analyze("ok 👍", Some(" EN "));
        assert_eq!(forced.lang, "en");
        assert_eq!(forced.sentiment, sentiment::english::score("ok 👍"));
    }

    #[test]
    fn given_a_forced_language_outside_the_enabled_set_then_it_is_kept_and_unscored_without_model()
    {
        let a = analyzer().analyze("Ceci est un texte.", Some("fr"));
        assert_eq!(a.lang, "fr");
        assert_eq!(a.sentiment, sentiment::unscored());
    }

    #[test]
    fn given_a_forced_unknown_code_then_the_text_is_und_and_unscored() {
        for code in ["xx", "und", "", "english"] {
            let a = analyzer().analyze("This is great", Some(code));
            assert_eq!(a.lang, "und", "{code:?}");
            assert_eq!(a.sentiment, sentiment::unscored());
        }
    }

    #[test]
    fn given_empty_text_with_a_forced_language_then_nothing_is_scored() {
        for code in ["en", "de"] {
            let a = analyzer().analyze("  \n", Some(code));
            assert_eq!(a.lang, code);
            assert_eq!(a.sentiment, sentiment::unscored());
        }
    }

    #[test]
    fn given_an_analysis_then_it_serialises_with_lang_and_sentiment_label() {
        let a = analyzer().analyze("", None);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["lang"], "und");
        assert_eq!(json["sentiment"]["label"], "unknown");
        assert_eq!(json["sentiment"]["compound"], 0.0);
    }

    proptest! {
        #[test]
        fn given_any_text_then_analysis_never_panics_and_stays_in_range(
            text in any::<String>(),
            forced in proptest::option::of(prop_oneof![
                Just("en".to_owned()), Just("de".to_owned()), Just("fr".to_owned()),
                "[a-z]{0,3}",
            ]),
        ) {
            let a = analyzer().analyze(&text, forced.as_deref());
            let s = a.sentiment;
            prop_assert!((-1.0..=1.0).contains(&s.compound));
            for p in [s.pos, s.neu, s.neg] {
                prop_assert!((0.0..=1.0).contains(&p));
            }
            if is_scored(&s) {
                prop_assert!(a.lang == "en" || a.lang == "de");
            } else {
                prop_assert_eq!([s.compound, s.pos, s.neu, s.neg], [0.0; 4]);
            }
        }

        #[test]
        fn given_mixed_script_noise_then_german_scoring_never_panics(
            text in "[a-zäöüß😀:()!@# /.]{0,200}",
        ) {
            let s = sentiment::german::embedded().unwrap().score(&text);
            let thousandths = ((s.pos + s.neu + s.neg) * 1000.0).round();
            prop_assert_eq!(thousandths, 1000.0);
        }
    }
}
