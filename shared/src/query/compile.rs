//! Compiles a query to platform searches. A platform search is only a prefilter (the local
//! [`Query::matches`] decides), so every compiler here may *broaden* — drop what a platform
//! cannot express — but never narrow: whatever the query matches, the compiled search must
//! find too (as far as the platform's own tokenisation agrees with ours).
//!
//! The method: the query is put in negation normal form (negations pushed down to the atoms by
//! De Morgan's laws), then every literal the platform cannot express exactly is replaced by
//! "true". Replacing a literal under no negation by "true" can only broaden. Groups made only
//! of negations are dropped as well: X forbids negation-only queries and Lucene-style engines
//! (Reddit) match nothing for a purely negative clause, so `a (-b OR -c)` becomes `a`.

use super::text::handle_local;
use super::{Expr, Query};

/// A query in negation normal form: `Not` only on atoms.
enum Nnf<'a> {
    Lit { atom: &'a Expr, negated: bool },
    And(Vec<Nnf<'a>>),
    Or(Vec<Nnf<'a>>),
}

/// Negation normal form of `expr` (negated if `negated`), `AND`/`OR` flattened.
fn nnf(expr: &Expr, negated: bool) -> Nnf<'_> {
    match expr {
        Expr::Not(inner) => nnf(inner, !negated),
        Expr::And(items) | Expr::Or(items) => {
            // De Morgan: ¬(a ∧ b) = ¬a ∨ ¬b and ¬(a ∨ b) = ¬a ∧ ¬b.
            let conjunction = matches!(expr, Expr::And(_)) != negated;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match (nnf(item, negated), conjunction) {
                    (Nnf::And(children), true) | (Nnf::Or(children), false) => {
                        out.extend(children);
                    }
                    (child, _) => out.push(child),
                }
            }
            if conjunction {
                Nnf::And(out)
            } else {
                Nnf::Or(out)
            }
        }
        atom => Nnf::Lit { atom, negated },
    }
}

/// A boolean-search dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    X,
    Reddit,
}

/// How a rendered part must be wrapped when placed inside another group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Single,
    And,
    Or,
}

/// A rendered part of a boolean search.
struct Rendered {
    text: String,
    /// Whether it requires something positive (so it can stand in an `OR` or alone).
    positive: bool,
    shape: Shape,
}

impl Rendered {
    fn single(text: String, positive: bool) -> Option<Rendered> {
        Some(Rendered {
            text,
            positive,
            shape: Shape::Single,
        })
    }
}

/// Whether a word may go unquoted in a platform query: letters, digits, marks and emoji only,
/// so that nothing in it reads as an operator (`from:`, `author:`) or Lucene syntax.
fn plain(word: &str) -> bool {
    !word.chars().any(|c| c.is_ascii_punctuation()) && !matches!(word, "and" | "or" | "not")
}

fn quoted_word(word: &str) -> String {
    if plain(word) {
        word.to_owned()
    } else {
        format!("\"{word}\"")
    }
}

/// X usernames: at most 15 of `[A-Za-z0-9_]`; other handles cannot be X accounts.
fn is_x_username(handle: &str) -> bool {
    (1..=15).contains(&handle.len())
        && handle
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reddit usernames: 3–20 of `[A-Za-z0-9_-]`; other handles cannot be Reddit accounts.
fn is_reddit_username(handle: &str) -> bool {
    (3..=20).contains(&handle.len())
        && handle
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// One literal in `dialect`, or `None` where it cannot be expressed exactly enough (replaced by
/// "true", which broadens).
fn literal(atom: &Expr, negated: bool, dialect: Dialect) -> Option<Rendered> {
    let x = dialect == Dialect::X;
    let not = if x { "-" } else { "NOT " };
    let positive = !negated;
    match atom {
        Expr::Word(word) => {
            let text = quoted_word(word);
            Rendered::single(
                if negated {
                    format!("{not}{text}")
                } else {
                    text
                },
                positive,
            )
        }
        Expr::Phrase(words) => {
            let text = format!("\"{}\"", words.join(" "));
            Rendered::single(
                if negated {
                    format!("{not}{text}")
                } else {
                    text
                },
                positive,
            )
        }
        // X matches hashtags exactly (`#` operator). Reddit has no hashtags: the tag's word is a
        // superset, but excluding the word would exclude more than the tag, so a negated tag
        // is dropped.
        // <https://docs.x.com/x-api/posts/search/integrate/build-a-query>
        Expr::Hashtag(tag) if x => Rendered::single(
            format!("{}#{tag}", if negated { not } else { "" }),
            positive,
        ),
        Expr::Hashtag(tag) => (!negated).then(|| Rendered {
            text: quoted_word(tag),
            positive,
            shape: Shape::Single,
        }),
        // An account matches a mention in the text or the author. X: `@name` (mentions) and
        // `from:name`; Reddit: the name as a word and `author:name`. For handles of other
        // networks only the mention text can be searched; excluding it would exclude more
        // than the mention, so negated foreign handles are dropped.
        Expr::Account(handle) => {
            let native = if x {
                is_x_username(handle)
            } else {
                is_reddit_username(handle)
            };
            match (native, negated) {
                (true, false) if x => {
                    Rendered::single(format!("(@{handle} OR from:{handle})"), true)
                }
                (true, false) => Rendered::single(format!("({handle} OR author:{handle})"), true),
                (true, true) if x => Some(Rendered {
                    text: format!("-@{handle} -from:{handle}"),
                    positive: false,
                    shape: Shape::And,
                }),
                (true, true) => Rendered::single(format!("NOT author:{handle}"), false),
                (false, false) => Rendered::single(format!("\"{handle}\""), true),
                (false, true) => None,
            }
        }
        // X's `lang:` is conjunction-required, which a valid query always satisfies; Reddit
        // has no language filter.
        Expr::Lang(code) if x => Rendered::single(
            format!("{}lang:{code}", if negated { not } else { "" }),
            positive,
        ),
        Expr::Lang(_) => None,
        // `nnf` leaves only atoms in literals.
        Expr::Not(_) | Expr::And(_) | Expr::Or(_) => None,
    }
}

/// Renders a query in negation normal form; `None` means "true" (no constraint).
fn render(node: &Nnf<'_>, dialect: Dialect) -> Option<Rendered> {
    match node {
        Nnf::Lit { atom, negated } => literal(atom, *negated, dialect),
        Nnf::And(items) => {
            let mut parts: Vec<Rendered> =
                items.iter().filter_map(|i| render(i, dialect)).collect();
            if parts.len() <= 1 {
                return parts.pop();
            }
            let separator = if dialect == Dialect::Reddit {
                " AND "
            } else {
                " "
            };
            let text = parts
                .iter()
                .map(|p| match p.shape {
                    Shape::Or => format!("({})", p.text),
                    _ => p.text.clone(),
                })
                .collect::<Vec<_>>()
                .join(separator);
            Some(Rendered {
                text,
                positive: parts.iter().any(|p| p.positive),
                shape: Shape::And,
            })
        }
        Nnf::Or(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                // An alternative that is "true" or only negations makes the whole OR "true".
                match render(item, dialect) {
                    Some(part) if part.positive => parts.push(part),
                    _ => return None,
                }
            }
            if parts.len() <= 1 {
                return parts.pop();
            }
            let text = parts
                .iter()
                .map(|p| match p.shape {
                    Shape::And => format!("({})", p.text),
                    _ => p.text.clone(),
                })
                .collect::<Vec<_>>()
                .join(" OR ");
            Some(Rendered {
                text,
                positive: true,
                shape: Shape::Or,
            })
        }
    }
}

/// The most keyword queries [`Query::keyword_queries`] plans for (its `max` is clamped to
/// this): the DNF is simplified pairwise, so its width must stay small.
pub const MAX_KEYWORD_QUERIES: usize = 256;

/// How [`Query::keyword_queries`] writes hashtags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordStyle {
    /// `#tag` for engines that index hashtags (Bluesky `searchPosts`).
    Hashtags,
    /// The tag's name as a plain word (Hacker News Algolia, YouTube): a text with `#tag` also
    /// has the word `tag`.
    Plain,
}

/// A term of an AND-only keyword query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeywordTerm {
    /// A single word (also a plain-style hashtag name or an account's handle).
    Word(String),
    /// Consecutive words.
    Phrase(Vec<String>),
    /// A hashtag (hashtag style only).
    Hashtag(String),
}

impl KeywordTerm {
    fn render(&self) -> String {
        match self {
            // `:` would read as a field filter (`from:`, `lang:`) on Bluesky.
            KeywordTerm::Word(word) if word.contains(':') => format!("\"{word}\""),
            KeywordTerm::Word(word) => word.clone(),
            KeywordTerm::Phrase(words) => format!("\"{}\"", words.join(" ")),
            KeywordTerm::Hashtag(tag) => format!("#{tag}"),
        }
    }
}

/// The keyword term for a positive atom, or `None` for what keyword engines cannot search
/// (`lang:`; the local check applies it).
fn keyword_term(atom: &Expr, style: KeywordStyle) -> Option<KeywordTerm> {
    match atom {
        Expr::Word(word) => Some(KeywordTerm::Word(word.clone())),
        Expr::Phrase(words) => Some(KeywordTerm::Phrase(words.clone())),
        Expr::Hashtag(tag) => Some(match style {
            KeywordStyle::Hashtags => KeywordTerm::Hashtag(tag.clone()),
            KeywordStyle::Plain => KeywordTerm::Word(tag.clone()),
        }),
        // A mention `@alice@host` has the word `alice`; `@alice.bsky.social` is one word.
        Expr::Account(handle) if handle.contains('@') => {
            Some(KeywordTerm::Word(handle_local(handle).to_owned()))
        }
        Expr::Account(handle) => Some(KeywordTerm::Word(handle.clone())),
        Expr::Lang(_) | Expr::Not(_) | Expr::And(_) | Expr::Or(_) => None,
    }
}

/// A conjunction: sorted, distinct indices into the term table. Empty = "true".
type Conj = Vec<usize>;

/// Disjunctive normal form over interned keyword terms, kept at most `limit` conjunctions
/// wide by dropping AND operands (which broadens).
struct DnfBuilder {
    terms: Vec<KeywordTerm>,
    style: KeywordStyle,
    limit: usize,
}

impl DnfBuilder {
    fn intern(&mut self, term: KeywordTerm) -> usize {
        if let Some(i) = self.terms.iter().position(|t| *t == term) {
            return i;
        }
        self.terms.push(term);
        self.terms.len() - 1
    }

    fn dnf(&mut self, node: &Nnf<'_>) -> Vec<Conj> {
        match node {
            Nnf::Lit {
                atom,
                negated: false,
            } => match keyword_term(atom, self.style) {
                Some(term) => vec![vec![self.intern(term)]],
                None => vec![Vec::new()],
            },
            // Exclusions are left to the local check.
            Nnf::Lit { negated: true, .. } => vec![Vec::new()],
            Nnf::Or(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.dnf(item));
                }
                simplify(out)
            }
            Nnf::And(items) => {
                let mut operands: Vec<Vec<Conj>> = items
                    .iter()
                    .map(|item| self.dnf(item))
                    .filter(|d| !is_true(d))
                    .collect();
                // Narrow operands first: single terms never widen the product and are always
                // kept; an operand that would push it past the limit is dropped (broader).
                operands.sort_by_key(Vec::len);
                let mut operands = operands.into_iter();
                let Some(mut acc) = operands.next() else {
                    return vec![Vec::new()];
                };
                for operand in operands {
                    if acc.len().saturating_mul(operand.len()) > self.limit {
                        continue;
                    }
                    let mut product = Vec::with_capacity(acc.len() * operand.len());
                    for a in &acc {
                        for b in &operand {
                            let mut conj = a.clone();
                            conj.extend(b);
                            conj.sort_unstable();
                            conj.dedup();
                            product.push(conj);
                        }
                    }
                    acc = simplify(product);
                }
                acc
            }
        }
    }
}

fn is_true(dnf: &[Conj]) -> bool {
    dnf.iter().any(Vec::is_empty)
}

/// Removes duplicate conjunctions and those implied by a narrower one (`a ∨ (a ∧ b)` = `a`).
fn simplify(mut dnf: Vec<Conj>) -> Vec<Conj> {
    if is_true(&dnf) {
        return vec![Vec::new()];
    }
    dnf.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    dnf.dedup();
    let mut kept: Vec<Conj> = Vec::with_capacity(dnf.len());
    for conj in dnf {
        if !kept.iter().any(|k| k.iter().all(|t| conj.contains(t))) {
            kept.push(conj);
        }
    }
    kept.sort();
    kept
}

/// Single-term queries that cover every conjunction (a greedy hitting set): the broadest
/// fallback when the DNF is wider than the caller's budget.
fn hitting_set(dnf: &[Conj]) -> Vec<Conj> {
    let mut uncovered: Vec<&Conj> = dnf.iter().collect();
    let mut picked = Vec::new();
    while !uncovered.is_empty() {
        let mut counts: Vec<(usize, usize)> = Vec::new();
        for conj in &uncovered {
            for &term in conj.iter() {
                match counts.iter_mut().find(|(t, _)| *t == term) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((term, 1)),
                }
            }
        }
        // Most frequent first; ties go to the term written first.
        let Some(&(best, _)) = counts
            .iter()
            .max_by(|(ta, na), (tb, nb)| na.cmp(nb).then_with(|| tb.cmp(ta)))
        else {
            break;
        };
        uncovered.retain(|conj| !conj.contains(&best));
        picked.push(vec![best]);
    }
    picked.sort();
    picked
}

/// Positive-polarity atoms (under an even number of negations), in order, without repeats.
fn positive_atoms<'a>(expr: &'a Expr, negated: bool, out: &mut Vec<&'a Expr>) {
    match expr {
        Expr::Not(inner) => positive_atoms(inner, !negated, out),
        Expr::And(items) | Expr::Or(items) => {
            for item in items {
                positive_atoms(item, negated, out);
            }
        }
        atom if !negated && !out.contains(&atom) => out.push(atom),
        _ => {}
    }
}

/// A set of values one of which every match must have, if there is one (`pick` says which
/// atoms provide values): an `AND` needs only one operand's cover, an `OR` needs all.
fn cover(expr: &Expr, pick: fn(&Expr) -> Option<&str>) -> Option<Vec<String>> {
    match expr {
        Expr::And(items) => items
            .iter()
            .filter_map(|item| cover(item, pick))
            .min_by_key(Vec::len),
        Expr::Or(items) => {
            let mut out: Vec<String> = Vec::new();
            for item in items {
                for value in cover(item, pick)? {
                    if !out.contains(&value) {
                        out.push(value);
                    }
                }
            }
            Some(out)
        }
        Expr::Not(_) => None,
        atom => pick(atom).map(|value| vec![value.to_owned()]),
    }
}

impl Query {
    /// The query for X API v2 recent search (`GET /2/tweets/search/recent`, `query`): implicit
    /// AND by space, `OR`, `-` negation, `"phrase"`, `#tag`, `@user`, `from:user`, `lang:xx`,
    /// parentheses; AND binds tighter than OR as in our syntax.
    /// <https://docs.x.com/x-api/posts/search/integrate/build-a-query>
    ///
    /// X asks for negations on single operators, not on groups, and forbids negation-only
    /// queries: group negations are pushed down (`-(a OR b)` → `-a -b`) and negation-only
    /// alternatives dropped (`-(a b)` → nothing), which broadens. An account `@name` becomes
    /// `(@name OR from:name)` (mentioned or author). X's query length limit (512 characters
    /// on self-serve access) is the caller's to check.
    pub fn to_x(&self) -> String {
        self.boolean_search(Dialect::X)
    }

    /// The query for Reddit search (`GET /search`, `q`): `AND`, `OR`, `NOT`, quotes and
    /// parentheses. Reddit has no hashtags (a positive `#tag` is searched as the word `tag`,
    /// a negated one dropped) and no language filter (`lang:` dropped); an account `@name`
    /// becomes `(name OR author:name)`. Reddit's `q` limit (512 characters, see the r2
    /// `GET_search` source in reddit-archive/reddit) is the caller's to check. Lucene-style
    /// engines mis-handle mixed `AND`/`OR` without parentheses, so every nested group is
    /// parenthesised.
    pub fn to_reddit(&self) -> String {
        self.boolean_search(Dialect::Reddit)
    }

    fn boolean_search(&self, dialect: Dialect) -> String {
        match render(&nnf(&self.expr, false), dialect) {
            Some(rendered) => rendered.text,
            // Unreachable for a parsed query: every valid query requires a positive word,
            // phrase, hashtag or account, which both dialects express. Fall back to the
            // broadest search rather than an empty one.
            None => self
                .keyword_queries(MAX_KEYWORD_QUERIES, KeywordStyle::Plain)
                .join(" OR "),
        }
    }

    /// AND-only keyword queries (Hacker News Algolia `query`, Bluesky `searchPosts` `q`,
    /// YouTube `q`): one per disjunct of the positive part of the query in disjunctive normal
    /// form, terms space-separated, phrases quoted. Exclusions and `lang:` are dropped (the
    /// local check applies them). An account becomes its handle as a word (`@alice@host` →
    /// `alice`); posts found only because of their *author* are not found by text search —
    /// use the platform's author filter for [`Query::accounts`].
    ///
    /// Polling every returned query finds a superset of what the query matches. When the DNF
    /// has more than `max` disjuncts, operands of `AND`s are dropped and, if that is not
    /// enough, the queries fall back to single terms that together cover every disjunct; if
    /// even that needs more than `max` queries (`a OR b OR c` with `max` 2), all of them are
    /// returned, because fewer would miss matches. `max` is clamped to
    /// 1..=[`MAX_KEYWORD_QUERIES`] so that hostile queries stay cheap to compile.
    pub fn keyword_queries(&self, max: usize, style: KeywordStyle) -> Vec<String> {
        let (terms, conjunctions) = self.keyword_plan(max, style);
        conjunctions
            .iter()
            .map(|conj| {
                conj.iter()
                    .map(|&i| terms[i].render())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// The keyword plan behind [`Query::keyword_queries`]: the term table and the conjunctions
    /// as indices into it.
    pub(crate) fn keyword_plan(
        &self,
        max: usize,
        style: KeywordStyle,
    ) -> (Vec<KeywordTerm>, Vec<Conj>) {
        let max = max.clamp(1, MAX_KEYWORD_QUERIES);
        let mut builder = DnfBuilder {
            terms: Vec::new(),
            style,
            limit: max,
        };
        let mut dnf = builder.dnf(&nnf(&self.expr, false));
        if is_true(&dnf) {
            // Unreachable for a parsed query (every alternative has a positive term).
            dnf.clear();
        }
        if dnf.len() > max {
            dnf = hitting_set(&dnf);
        }
        (builder.terms, dnf)
    }

    /// The hashtags the query looks for (not those it excludes), normalised, without `#`, in
    /// the order written.
    pub fn hashtags(&self) -> Vec<String> {
        self.positive(|atom| match atom {
            Expr::Hashtag(tag) => Some(tag),
            _ => None,
        })
    }

    /// The accounts the query looks for (not those it excludes), normalised handles without
    /// `@`, in the order written: for platforms' author filters.
    pub fn accounts(&self) -> Vec<String> {
        self.positive(|atom| match atom {
            Expr::Account(handle) => Some(handle),
            _ => None,
        })
    }

    fn positive(&self, pick: fn(&Expr) -> Option<&String>) -> Vec<String> {
        let mut atoms = Vec::new();
        positive_atoms(&self.expr, false, &mut atoms);
        atoms.into_iter().filter_map(pick).cloned().collect()
    }

    /// Hashtags one of which every match has, if the query guarantees that: then polling these
    /// hashtag timelines (Mastodon `GET /api/v1/timelines/tag/:hashtag`) misses nothing. `None`
    /// when some match may carry none of them (`hark OR #harkapp`).
    pub fn hashtag_cover(&self) -> Option<Vec<String>> {
        cover(&self.expr, |atom| match atom {
            Expr::Hashtag(tag) => Some(tag),
            _ => None,
        })
    }

    /// Languages one of which every match has, if the query guarantees that (for platforms'
    /// language filters, e.g. Bluesky `lang`); `None` when a match may be in any language.
    pub fn languages(&self) -> Option<Vec<String>> {
        cover(&self.expr, |atom| match atom {
            Expr::Lang(code) => Some(code),
            _ => None,
        })
    }
}
