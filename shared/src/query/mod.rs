//! The campaign query language: parse once, match locally, compile to platform searches.
//!
//! A campaign's query is a boolean expression such as `(hark OR #harkapp) -hiring`:
//!
//! | syntax | meaning |
//! |---|---|
//! | `hark` | the word, case-insensitively, as a whole word (not inside `sharks`) |
//! | `"hark app"` | the words consecutively, punctuation between them ignored (`Hark – app!`) |
//! | `#harkapp` | the hashtag `#harkapp` (not the plain word `harkapp`) |
//! | `@alice`, `@alice@host`, `@alice.bsky.social` | a mention of the account in the text, or the account as author |
//! | `lang:de` | the mention's language (ISO 639-1) |
//! | `a b`, `a AND b` | both |
//! | `a OR b` | either |
//! | `NOT a`, `-a`, `-"a b"`, `-#a`, `-(a OR b)` | not |
//! | `( … )` | grouping |
//!
//! Precedence: `NOT`/`-` binds tightest, then `AND` (explicit or implicit), then `OR`. Keywords
//! are upper-case only: `and`, `or`, `not` are ordinary words. A bare term that Unicode word
//! segmentation cuts into several words (`e-mail`, `日本語`) is a phrase of those words.
//!
//! Matching rules (see [`PreparedText`] and the `text` module for the tokenisation):
//! - Case-insensitive by simple Unicode lower-casing (`Straße` = `straße`, `Übung` = `übung`).
//! - A plain word matches the word anywhere in the text, including as a hashtag's name
//!   (`hark` matches `#hark`) and as a mentioned handle or its local part (`alice` matches
//!   `@alice.bsky.social`), and the parts of a word around an apostrophe (`hark` matches
//!   `Hark's`). It never matches inside another word (`sharks`, `harken`, `hark.app`).
//! - `#tag` matches only the hashtag, never the plain word.
//! - `@alice` (user only) matches any mention or author whose handle's local part — before the
//!   first `@` or `.` — is `alice`: `@alice`, `@alice@mastodon.social`, `alice.bsky.social`.
//!   `@alice@host` and `@alice.bsky.social` match only that exact handle. Connectors pass the
//!   author's full handle (`alice@mastodon.social`, not `alice`).
//! - `lang:de` matches when the mention's language's primary subtag is `de` (`de`, `de-AT`).
//! - Emoji are words: `🎉` matches `Launch 🎉🎉`; skin tones and emoji variation selectors are
//!   ignored.
//!
//! Every query must look for something: a query, or an `OR` alternative, made only of
//! exclusions and `lang:` filters (`-hiring`, `hark OR -hiring`, `lang:de`) would match almost
//! every mention and is rejected.
//!
//! Platform searches are prefilters only: whatever a platform returns is re-checked with
//! [`Query::matches`]. The compilers therefore only ever *broaden* (drop what a platform cannot
//! express), never narrow: [`Query::to_x`], [`Query::to_reddit`], [`Query::keyword_queries`],
//! [`Query::hashtag_cover`], [`Query::languages`].

mod compile;
mod lexer;
mod parser;
mod text;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use compile::{KeywordStyle, MAX_KEYWORD_QUERIES};
pub use text::{PreparedText, normalize};

/// The longest query accepted, in characters: keeps hostile input cheap to reject.
pub const MAX_QUERY_CHARS: usize = 1_000;

/// The deepest nesting of parentheses and negations accepted, so that no input can exhaust
/// the stack of the recursive parser, matcher or compilers.
pub const MAX_NESTING: usize = 32;

/// A parsed query's syntax tree, normalised: words lower-cased (see [`normalize`]), `AND`/`OR`
/// flattened (`a (b c)` is one `And` of three), double negations removed, a quoted single word
/// is a [`Expr::Word`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// One normalised word.
    Word(String),
    /// Two or more normalised words that must appear consecutively.
    Phrase(Vec<String>),
    /// A hashtag's normalised name, without `#`.
    Hashtag(String),
    /// A normalised handle without the leading `@`: `alice`, `alice@host`, `alice.bsky.social`.
    Account(String),
    /// An ISO 639-1 language code, lower-case.
    Lang(String),
    /// Negation.
    Not(Box<Expr>),
    /// All of (two or more, none of them an `And`).
    And(Vec<Expr>),
    /// Any of (two or more, none of them an `Or`).
    Or(Vec<Expr>),
}

/// A campaign query: the syntax tree and the text it was parsed from.
///
/// Two queries are equal when their syntax trees are (`(hark)` equals `hark`). [`Display`]
/// renders the canonical form, which parses back to an equal query.
///
/// [`Display`]: fmt::Display
#[derive(Debug, Clone)]
pub struct Query {
    expr: Expr,
    source: String,
}

/// Why a query was rejected. Columns are 1-based and count characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing but whitespace.
    #[error("the query is empty")]
    Empty,
    /// Longer than [`MAX_QUERY_CHARS`].
    #[error("the query is {chars} characters long; at most {max} are allowed")]
    TooLong {
        /// The query's length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// Nested deeper than [`MAX_NESTING`].
    #[error("column {column}: parentheses and negations are nested more than {max} levels deep")]
    TooDeep {
        /// Where the limit was passed.
        column: usize,
        /// The limit.
        max: usize,
    },
    /// A `"` without its closing `"`.
    #[error("column {column}: unclosed quote")]
    UnclosedQuote {
        /// The opening quote.
        column: usize,
    },
    /// `""` or a phrase of punctuation only.
    #[error("column {column}: the phrase has no words to search for")]
    EmptyPhrase {
        /// The opening quote.
        column: usize,
    },
    /// An operator with nothing usable after it: `hark OR`, `a AND )`, `- a`, `()`.
    #[error("column {column}: expected a term after `{after}`")]
    ExpectedTerm {
        /// The operator.
        column: usize,
        /// `OR`, `AND`, `NOT`, `-` or `(`.
        after: &'static str,
    },
    /// `OR`/`AND` with nothing before it: `OR hark`, `(AND a)`.
    #[error("column {column}: expected a term before `{keyword}`")]
    MissingLeftOperand {
        /// The operator.
        column: usize,
        /// `OR` or `AND`.
        keyword: &'static str,
    },
    /// A `(` that is never closed.
    #[error("column {column}: unbalanced parenthesis: this `(` is never closed")]
    UnclosedParenthesis {
        /// The `(`.
        column: usize,
    },
    /// A `)` without a `(`.
    #[error("column {column}: unbalanced parenthesis: this `)` has no matching `(`")]
    UnexpectedParenthesis {
        /// The `)`.
        column: usize,
    },
    /// A term of punctuation or symbols only (`!!!`, `€`).
    #[error("column {column}: `{token}` has no letters, digits or emoji to search for")]
    NoWords {
        /// The term.
        column: usize,
        /// The term as written.
        token: String,
    },
    /// `#` not followed by a valid tag name (`#`, `#hark!`).
    #[error(
        "column {column}: `{token}` is not a hashtag: write `#` followed by letters, digits or `_`"
    )]
    InvalidHashtag {
        /// The hashtag.
        column: usize,
        /// The hashtag as written.
        token: String,
    },
    /// `@` not followed by a valid handle (`@`, `@@x`, `@alice@`).
    #[error(
        "column {column}: `{token}` is not an account: write `@name`, `@name@host` or `@name.domain`"
    )]
    InvalidAccount {
        /// The account.
        column: usize,
        /// The account as written.
        token: String,
    },
    /// `lang:` without a known ISO 639-1 code.
    #[error(
        "column {column}: `{code}` is not an ISO 639-1 language code: write two letters, e.g. `lang:en` or `lang:de`"
    )]
    InvalidLanguage {
        /// The `lang:` operator.
        column: usize,
        /// The code as written.
        code: String,
    },
    /// A query, or an `OR` alternative, that only excludes or filters by language.
    #[error(
        "column {column}: this part of the query only excludes or filters (`-term`, `NOT`, `lang:`) and would match almost every mention; combine it with a word, phrase, #hashtag or @account to look for, e.g. `hark -hiring`"
    )]
    NothingToLookFor {
        /// The start of the offending part.
        column: usize,
    },
}

impl QueryError {
    /// The 1-based character column the error points at, if it points at one.
    pub fn column(&self) -> Option<usize> {
        match self {
            QueryError::Empty | QueryError::TooLong { .. } => None,
            QueryError::TooDeep { column, .. }
            | QueryError::UnclosedQuote { column }
            | QueryError::EmptyPhrase { column }
            | QueryError::ExpectedTerm { column, .. }
            | QueryError::MissingLeftOperand { column, .. }
            | QueryError::UnclosedParenthesis { column }
            | QueryError::UnexpectedParenthesis { column }
            | QueryError::NoWords { column, .. }
            | QueryError::InvalidHashtag { column, .. }
            | QueryError::InvalidAccount { column, .. }
            | QueryError::InvalidLanguage { column, .. }
            | QueryError::NothingToLookFor { column } => Some(*column),
        }
    }
}

/// What a mention offers to be matched against a query.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatchInput<'a> {
    /// The mention's plain text (HTML already stripped).
    pub text: &'a str,
    /// The author's handle, with or without a leading `@`: `alice`, `alice@mastodon.social`,
    /// `alice.bsky.social`.
    pub author: Option<&'a str>,
    /// The mention's language: ISO 639-1 or a BCP 47 tag whose primary subtag is (`de-AT`).
    pub lang: Option<&'a str>,
}

impl Query {
    /// Parses a query (see the module docs for the syntax).
    ///
    /// # Errors
    /// A [`QueryError`] saying what is wrong and, where it can, at which column.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        let expr = parser::parse(text)?;
        Ok(Query {
            expr,
            source: text.to_owned(),
        })
    }

    /// The normalised syntax tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The text the query was parsed from, as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether a mention matches. Tokenises the text; to match one text against many queries,
    /// build a [`PreparedText`] once and use [`Query::matches_prepared`].
    pub fn matches(&self, input: &MatchInput<'_>) -> bool {
        self.matches_prepared(&PreparedText::new(input.text), input.author, input.lang)
    }

    /// Whether a mention matches, its text tokenised beforehand. Allocates nothing.
    pub fn matches_prepared(
        &self,
        text: &PreparedText,
        author: Option<&str>,
        lang: Option<&str>,
    ) -> bool {
        eval(&self.expr, text, author, lang)
    }
}

/// Evaluates `expr` (recursion bounded by [`MAX_NESTING`] through the parser).
fn eval(expr: &Expr, text: &PreparedText, author: Option<&str>, lang: Option<&str>) -> bool {
    match expr {
        Expr::Word(word) => text.has_word(word),
        Expr::Phrase(words) => text.has_phrase(words),
        Expr::Hashtag(tag) => text.has_hashtag(tag),
        Expr::Account(handle) => {
            text.has_mention(handle) || author.is_some_and(|a| author_is(a, handle))
        }
        Expr::Lang(code) => lang.is_some_and(|l| primary_subtag(l).eq_ignore_ascii_case(code)),
        Expr::Not(inner) => !eval(inner, text, author, lang),
        Expr::And(items) => items.iter().all(|e| eval(e, text, author, lang)),
        Expr::Or(items) => items.iter().any(|e| eval(e, text, author, lang)),
    }
}

/// The primary subtag of a language tag (`de-AT` → `de`, `pt_BR` → `pt`).
fn primary_subtag(lang: &str) -> &str {
    lang.split(['-', '_']).next().unwrap_or(lang).trim()
}

/// Whether the author handle (raw, maybe with `@`) is the query's normalised handle: the local
/// part for a user-only handle, the whole handle otherwise. Compares without allocating.
fn author_is(author: &str, handle: &str) -> bool {
    let author = author.trim().trim_start_matches('@');
    let chars = text::normalized_chars(author);
    if text::is_local_only(handle) {
        chars
            .take_while(|c| !matches!(c, '@' | '.'))
            .eq(handle.chars())
    } else {
        chars.eq(handle.chars())
    }
}

impl PartialEq for Query {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl Eq for Query {}

impl FromStr for Query {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Query::parse(s)
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl fmt::Display for Expr {
    /// The canonical form: minimal parentheses, `-` for negation, implicit `AND`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Word(word) => {
                if lexer::is_bare_word(word) {
                    f.write_str(word)
                } else {
                    write!(f, "\"{word}\"")
                }
            }
            Expr::Phrase(words) => write!(f, "\"{}\"", words.join(" ")),
            Expr::Hashtag(tag) => write!(f, "#{tag}"),
            Expr::Account(handle) => write!(f, "@{handle}"),
            Expr::Lang(code) => write!(f, "lang:{code}"),
            Expr::Not(inner) => match **inner {
                Expr::And(_) | Expr::Or(_) => write!(f, "-({inner})"),
                _ => write!(f, "-{inner}"),
            },
            Expr::And(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    match item {
                        Expr::And(_) | Expr::Or(_) => write!(f, "({item})")?,
                        _ => write!(f, "{item}")?,
                    }
                }
                Ok(())
            }
            Expr::Or(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    match item {
                        Expr::Or(_) => write!(f, "({item})")?,
                        _ => write!(f, "{item}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

impl serde::Serialize for Query {
    /// Serialises as the text the query was parsed from.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Query {
    /// Deserialises from query text, rejecting invalid queries with the [`QueryError`] message.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Query::parse(&text).map_err(serde::de::Error::custom)
    }
}
