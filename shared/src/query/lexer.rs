//! Cuts query text into tokens, each with its 1-based character column. Terms are classified
//! and normalised here, so the parser only sees finished atoms.

use super::text::{is_handle_char, is_host_char, is_tag_char, normalize, words_of};
use super::{Expr, QueryError};

/// ISO 639-1 codes (sorted; includes the withdrawn `bh`, which detectors still emit).
const ISO_639_1: [&str; 184] = [
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh",
    "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da",
    "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr",
    "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz",
    "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj",
    "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln",
    "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb",
    "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi",
    "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk",
    "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti",
    "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo",
    "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

/// The `lang:` operator's prefix (matched case-insensitively).
const LANG_PREFIX: &str = "lang:";

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenKind {
    LParen,
    RParen,
    /// `-` directly before a term or group.
    Minus,
    And,
    Or,
    Not,
    /// A finished, normalised atom: word, phrase, hashtag, account or language.
    Atom(Expr),
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) kind: TokenKind,
    /// 1-based character column.
    pub(super) column: usize,
}

/// Whether `c` ends a bare term.
fn ends_bare(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

/// Cuts `chars` (the whole query) into tokens.
pub(super) fn lex(chars: &[char]) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let kind = match c {
            '(' => {
                i += 1;
                TokenKind::LParen
            }
            ')' => {
                i += 1;
                TokenKind::RParen
            }
            '"' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '"')
                    .ok_or(QueryError::UnclosedQuote { column })?;
                let content: String = chars[i + 1..i + 1 + close].iter().collect();
                i += close + 2;
                TokenKind::Atom(phrase(&content, column)?)
            }
            '-' => {
                // An exclusion is written without a space (`-hiring`): a lone `-` is more likely
                // a dash in prose than a negation, so say so instead of guessing.
                match chars.get(i + 1) {
                    Some(next) if !next.is_whitespace() => {
                        i += 1;
                        TokenKind::Minus
                    }
                    _ => {
                        return Err(QueryError::ExpectedTerm { column, after: "-" });
                    }
                }
            }
            _ => {
                let len = chars[i..]
                    .iter()
                    .position(|&c| ends_bare(c))
                    .unwrap_or(chars.len() - i);
                let raw: String = chars[i..i + len].iter().collect();
                i += len;
                bare(&raw, column)?
            }
        };
        tokens.push(Token { kind, column });
    }
    Ok(tokens)
}

/// A quoted phrase: its words; a single word is a [`Expr::Word`].
fn phrase(content: &str, column: usize) -> Result<Expr, QueryError> {
    let mut words = words_of(content);
    match words.len() {
        0 => Err(QueryError::EmptyPhrase { column }),
        1 => Ok(Expr::Word(words.remove(0))),
        _ => Ok(Expr::Phrase(words)),
    }
}

/// Classifies a bare (unquoted) token.
fn bare(raw: &str, column: usize) -> Result<TokenKind, QueryError> {
    match raw {
        "AND" => return Ok(TokenKind::And),
        "OR" => return Ok(TokenKind::Or),
        "NOT" => return Ok(TokenKind::Not),
        _ => {}
    }
    let atom = if let Some(tag) = raw.strip_prefix('#') {
        hashtag(tag).ok_or_else(|| QueryError::InvalidHashtag {
            column,
            token: raw.to_owned(),
        })?
    } else if let Some(handle) = raw.strip_prefix('@') {
        account(handle).ok_or_else(|| QueryError::InvalidAccount {
            column,
            token: raw.to_owned(),
        })?
    } else if raw
        .get(..LANG_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(LANG_PREFIX))
    {
        let code = &raw[LANG_PREFIX.len()..];
        language(code).ok_or_else(|| QueryError::InvalidLanguage {
            column,
            code: code.to_owned(),
        })?
    } else {
        let mut words = words_of(raw);
        match words.len() {
            0 => {
                return Err(QueryError::NoWords {
                    column,
                    token: raw.to_owned(),
                });
            }
            1 => Expr::Word(words.remove(0)),
            _ => Expr::Phrase(words),
        }
    };
    Ok(TokenKind::Atom(atom))
}

/// A hashtag's name (after `#`), normalised, if valid.
fn hashtag(name: &str) -> Option<Expr> {
    let name = normalize(name);
    let valid = !name.is_empty()
        && name.chars().all(is_tag_char)
        && name.chars().any(|c| c.is_alphanumeric() || c == '_');
    valid.then_some(Expr::Hashtag(name))
}

/// An account handle (after `@`), normalised, if valid: `user`, `user@host` or `user.domain`.
fn account(handle: &str) -> Option<Expr> {
    let handle = normalize(handle);
    let (user, host) = match handle.split_once('@') {
        Some((user, host)) => (user, Some(host)),
        None => (handle.as_str(), None),
    };
    let user_ok = user.starts_with(|c: char| c.is_alphanumeric() || c == '_')
        && !user.ends_with(['.', '-'])
        && user.chars().all(is_handle_char);
    let host_ok = host.is_none_or(|host| {
        host.starts_with(char::is_alphanumeric)
            && host.ends_with(char::is_alphanumeric)
            && host.chars().all(is_host_char)
    });
    (user_ok && host_ok).then_some(Expr::Account(handle))
}

/// A `lang:` code, lower-cased, if it is ISO 639-1.
fn language(code: &str) -> Option<Expr> {
    let code = code.to_ascii_lowercase();
    ISO_639_1
        .binary_search(&code.as_str())
        .is_ok()
        .then_some(Expr::Lang(code))
}

/// Whether a normalised word can be written bare (unquoted) and lexes back to itself.
pub(super) fn is_bare_word(word: &str) -> bool {
    !word.is_empty()
        && !word.chars().any(ends_bare)
        && !word.starts_with(['-', '#', '@'])
        && !matches!(word, "AND" | "OR" | "NOT")
        && !word
            .get(..LANG_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(LANG_PREFIX))
}
