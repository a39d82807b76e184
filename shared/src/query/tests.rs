//! Specifications of the campaign query language: syntax, errors, canonical form, matching,
//! compilation to platform searches, and properties over generated input.

use proptest::prelude::*;

use super::compile::KeywordTerm;
use super::*;

fn parse(text: &str) -> Query {
    match Query::parse(text) {
        Ok(query) => query,
        Err(error) => panic!("`{text}` should parse, got: {error}"),
    }
}

fn error(text: &str) -> QueryError {
    match Query::parse(text) {
        Ok(query) => panic!("`{text}` should be rejected, parsed as {:?}", query.expr()),
        Err(error) => error,
    }
}

fn word(w: &str) -> Expr {
    Expr::Word(w.to_owned())
}

fn phrase(words: &[&str]) -> Expr {
    Expr::Phrase(words.iter().map(|w| (*w).to_owned()).collect())
}

fn tag(t: &str) -> Expr {
    Expr::Hashtag(t.to_owned())
}

fn account(h: &str) -> Expr {
    Expr::Account(h.to_owned())
}

fn lang(code: &str) -> Expr {
    Expr::Lang(code.to_owned())
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn and(items: Vec<Expr>) -> Expr {
    Expr::And(items)
}

fn or(items: Vec<Expr>) -> Expr {
    Expr::Or(items)
}

fn matches(query: &str, text: &str) -> bool {
    parse(query).matches(&MatchInput {
        text,
        author: None,
        lang: None,
    })
}

fn matches_by(query: &str, text: &str, author: &str) -> bool {
    parse(query).matches(&MatchInput {
        text,
        author: Some(author),
        lang: None,
    })
}

fn matches_in(query: &str, text: &str, language: Option<&str>) -> bool {
    parse(query).matches(&MatchInput {
        text,
        author: None,
        lang: language,
    })
}

// ---------------------------------------------------------------------------------------------
// Syntax
// ---------------------------------------------------------------------------------------------

#[test]
fn given_a_word_when_parsed_then_it_is_lower_cased() {
    assert_eq!(parse("Hark").expr(), &word("hark"));
}

#[test]
fn given_a_quoted_phrase_when_parsed_then_it_is_its_lower_cased_words() {
    assert_eq!(
        parse("\"Hark, the App\"").expr(),
        &phrase(&["hark", "the", "app"])
    );
}

#[test]
fn given_a_quoted_single_word_when_parsed_then_it_is_a_word() {
    assert_eq!(parse("\"Hark\"").expr(), &word("hark"));
}

#[test]
fn given_a_bare_term_with_inner_punctuation_when_parsed_then_it_is_a_phrase_of_its_words() {
    assert_eq!(parse("e-mail").expr(), &phrase(&["e", "mail"]));
    assert_eq!(parse("hark's").expr(), &word("hark's"));
}

#[test]
fn given_hashtag_account_and_language_when_parsed_then_they_are_normalised_atoms() {
    assert_eq!(parse("#HarkApp").expr(), &tag("harkapp"));
    assert_eq!(parse("@Alice").expr(), &account("alice"));
    assert_eq!(
        parse("@alice@Mastodon.Social").expr(),
        &account("alice@mastodon.social")
    );
    assert_eq!(
        parse("@alice.bsky.social").expr(),
        &account("alice.bsky.social")
    );
    assert_eq!(
        parse("hark lang:DE").expr(),
        &and(vec![word("hark"), lang("de")])
    );
}

#[test]
fn given_adjacent_terms_when_parsed_then_implicit_and_equals_explicit_and() {
    let expected = and(vec![word("hark"), word("app"), tag("launch")]);
    assert_eq!(parse("hark app #launch").expr(), &expected);
    assert_eq!(parse("hark AND app AND #launch").expr(), &expected);
    assert_eq!(parse("hark AND app #launch").expr(), &expected);
}

#[test]
fn given_or_when_parsed_then_alternatives_are_flattened() {
    assert_eq!(
        parse("a OR (b OR c)").expr(),
        &or(vec![word("a"), word("b"), word("c")])
    );
    assert_eq!(
        parse("a (b c)").expr(),
        &and(vec![word("a"), word("b"), word("c")])
    );
}

#[test]
fn given_each_exclusion_form_when_parsed_then_it_is_a_negation() {
    assert_eq!(
        parse("hark -hiring").expr(),
        &and(vec![word("hark"), not(word("hiring"))])
    );
    assert_eq!(
        parse("hark -\"we are hiring\"").expr(),
        &and(vec![word("hark"), not(phrase(&["we", "are", "hiring"]))])
    );
    assert_eq!(
        parse("hark -#jobs").expr(),
        &and(vec![word("hark"), not(tag("jobs"))])
    );
    assert_eq!(
        parse("hark -@bob").expr(),
        &and(vec![word("hark"), not(account("bob"))])
    );
    assert_eq!(
        parse("hark -lang:en").expr(),
        &and(vec![word("hark"), not(lang("en"))])
    );
    assert_eq!(
        parse("hark -(jobs OR hiring)").expr(),
        &and(vec![
            word("hark"),
            not(or(vec![word("jobs"), word("hiring")]))
        ])
    );
    assert_eq!(
        parse("hark NOT hiring").expr(),
        parse("hark -hiring").expr()
    );
    assert_eq!(
        parse("hark AND NOT hiring").expr(),
        parse("hark -hiring").expr()
    );
}

#[test]
fn given_double_negation_when_parsed_then_it_cancels() {
    assert_eq!(parse("NOT -hark").expr(), &word("hark"));
    assert_eq!(
        parse("-(-hark) app").expr(),
        &and(vec![word("hark"), word("app")])
    );
}

#[test]
fn given_mixed_operators_when_parsed_then_not_binds_tighter_than_and_tighter_than_or() {
    assert_eq!(
        parse("a b OR c").expr(),
        &or(vec![and(vec![word("a"), word("b")]), word("c")])
    );
    assert_eq!(
        parse("a OR b AND c").expr(),
        &or(vec![word("a"), and(vec![word("b"), word("c")])])
    );
    assert_eq!(
        parse("a -b OR c").expr(),
        &or(vec![and(vec![word("a"), not(word("b"))]), word("c")])
    );
    assert_eq!(
        parse("a NOT b c").expr(),
        &and(vec![word("a"), not(word("b")), word("c")])
    );
    assert_eq!(
        parse("(a OR b) c").expr(),
        &and(vec![or(vec![word("a"), word("b")]), word("c")])
    );
}

#[test]
fn given_lower_case_keywords_when_parsed_then_they_are_ordinary_words() {
    assert_eq!(
        parse("cats and dogs or not").expr(),
        &and(vec![
            word("cats"),
            word("and"),
            word("dogs"),
            word("or"),
            word("not")
        ])
    );
}

#[test]
fn given_unicode_terms_when_parsed_then_umlauts_cjk_and_emoji_are_words() {
    assert_eq!(parse("Übung").expr(), &word("übung"));
    assert_eq!(parse("STRAẞE").expr(), &word("straße"));
    assert_eq!(parse("日本語").expr(), &phrase(&["日", "本", "語"]));
    assert_eq!(parse("🎉").expr(), &word("🎉"));
    assert_eq!(parse("#Übung").expr(), &tag("übung"));
}

#[test]
fn given_a_query_when_parsed_then_the_source_text_is_kept() {
    let query = parse("(Hark OR #HarkApp)  -hiring");
    assert_eq!(query.source(), "(Hark OR #HarkApp)  -hiring");
    assert_eq!("hark".parse::<Query>(), Ok(parse("hark")));
}

#[test]
fn given_a_query_with_only_positive_parts_next_to_exclusions_when_parsed_then_it_is_accepted() {
    // The OR has an exclusion-only alternative, but the AND requires `hark` anyway.
    assert!(Query::parse("hark (lang:de OR -hiring)").is_ok());
    assert!(Query::parse("-hiring hark").is_ok());
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn given_empty_input_when_parsed_then_empty_is_reported() {
    assert_eq!(error(""), QueryError::Empty);
    assert_eq!(error("  \t "), QueryError::Empty);
    assert_eq!(error("").to_string(), "the query is empty");
}

#[test]
fn given_input_over_the_length_limit_when_parsed_then_too_long_is_reported() {
    let text = "hark ".repeat(200) + "x";
    assert_eq!(
        error(&text),
        QueryError::TooLong {
            chars: 1001,
            max: 1000
        }
    );
    assert!(Query::parse(&"a".repeat(MAX_QUERY_CHARS)).is_ok());
}

#[test]
fn given_an_unclosed_quote_when_parsed_then_the_quote_column_is_reported() {
    let e = error("hark AND \"the app");
    assert_eq!(e, QueryError::UnclosedQuote { column: 10 });
    assert_eq!(e.to_string(), "column 10: unclosed quote");
}

#[test]
fn given_columns_when_reported_then_they_count_characters_not_bytes() {
    assert_eq!(error("Übung \"x"), QueryError::UnclosedQuote { column: 7 });
}

#[test]
fn given_an_empty_phrase_when_parsed_then_the_phrase_column_is_reported() {
    assert_eq!(error("hark \"\""), QueryError::EmptyPhrase { column: 6 });
    assert_eq!(error("hark \"!?\""), QueryError::EmptyPhrase { column: 6 });
}

#[test]
fn given_an_operator_without_operand_when_parsed_then_expected_term_points_at_it() {
    let e = error("hark OR");
    assert_eq!(
        e,
        QueryError::ExpectedTerm {
            column: 6,
            after: "OR"
        }
    );
    assert_eq!(e.to_string(), "column 6: expected a term after `OR`");
    assert_eq!(
        error("hark OR OR app"),
        QueryError::ExpectedTerm {
            column: 6,
            after: "OR"
        }
    );
    assert_eq!(
        error("(hark AND) app"),
        QueryError::ExpectedTerm {
            column: 7,
            after: "AND"
        }
    );
    assert_eq!(
        error("hark NOT"),
        QueryError::ExpectedTerm {
            column: 6,
            after: "NOT"
        }
    );
    assert_eq!(
        error("hark - app"),
        QueryError::ExpectedTerm {
            column: 6,
            after: "-"
        }
    );
    assert_eq!(
        error("hark -"),
        QueryError::ExpectedTerm {
            column: 6,
            after: "-"
        }
    );
    assert_eq!(
        error("hark ()"),
        QueryError::ExpectedTerm {
            column: 6,
            after: "("
        }
    );
}

#[test]
fn given_an_operator_without_left_operand_when_parsed_then_it_is_reported() {
    let e = error("OR hark");
    assert_eq!(
        e,
        QueryError::MissingLeftOperand {
            column: 1,
            keyword: "OR"
        }
    );
    assert_eq!(e.to_string(), "column 1: expected a term before `OR`");
    assert_eq!(
        error("hark (AND app)"),
        QueryError::MissingLeftOperand {
            column: 7,
            keyword: "AND"
        }
    );
}

#[test]
fn given_unbalanced_parentheses_when_parsed_then_the_culprit_is_reported() {
    let e = error("(hark OR app");
    assert_eq!(e, QueryError::UnclosedParenthesis { column: 1 });
    assert_eq!(
        e.to_string(),
        "column 1: unbalanced parenthesis: this `(` is never closed"
    );
    assert_eq!(
        error("((hark) app"),
        QueryError::UnclosedParenthesis { column: 1 }
    );
    let e = error("hark) app");
    assert_eq!(e, QueryError::UnexpectedParenthesis { column: 5 });
    assert!(e.to_string().contains("unbalanced parenthesis"));
    assert_eq!(
        error(") hark"),
        QueryError::UnexpectedParenthesis { column: 1 }
    );
}

#[test]
fn given_nesting_past_the_limit_when_parsed_then_too_deep_is_reported_without_overflow() {
    let deepest_ok = "(".repeat(MAX_NESTING) + "hark" + &")".repeat(MAX_NESTING);
    assert_eq!(parse(&deepest_ok).expr(), &word("hark"));

    let too_deep = "(".repeat(MAX_NESTING + 1) + "hark" + &")".repeat(MAX_NESTING + 1);
    assert_eq!(
        error(&too_deep),
        QueryError::TooDeep {
            column: MAX_NESTING + 1,
            max: MAX_NESTING
        }
    );

    // Hostile input at the length limit: must be an error, not a stack overflow.
    let hostile = "(".repeat(MAX_QUERY_CHARS - 1) + "a";
    assert!(matches!(error(&hostile), QueryError::TooDeep { .. }));
    let negations = "-".repeat(MAX_QUERY_CHARS - 1) + "a";
    assert!(matches!(
        error(&negations),
        QueryError::TooDeep { column: 33, .. }
    ));
    let mixed = "-(".repeat(MAX_QUERY_CHARS / 2 - 1) + "a";
    assert!(matches!(error(&mixed), QueryError::TooDeep { .. }));
}

#[test]
fn given_a_term_of_punctuation_when_parsed_then_no_words_is_reported() {
    let e = error("hark !!!");
    assert_eq!(
        e,
        QueryError::NoWords {
            column: 6,
            token: "!!!".to_owned()
        }
    );
    assert_eq!(
        e.to_string(),
        "column 6: `!!!` has no letters, digits or emoji to search for"
    );
}

#[test]
fn given_an_invalid_hashtag_when_parsed_then_it_is_reported_with_its_column() {
    for (text, column, token) in [
        ("hark #", 6, "#"),
        ("hark #hark!", 6, "#hark!"),
        ("#🎉", 1, "#🎉"),
        ("a #b#c", 3, "#b#c"),
    ] {
        assert_eq!(
            error(text),
            QueryError::InvalidHashtag {
                column,
                token: token.to_owned()
            },
            "{text}"
        );
    }
}

#[test]
fn given_an_invalid_account_when_parsed_then_it_is_reported_with_its_column() {
    for (text, column, token) in [
        ("hark @", 6, "@"),
        ("@@alice", 1, "@@alice"),
        ("@alice@", 1, "@alice@"),
        ("@.alice", 1, "@.alice"),
        ("@alice.", 1, "@alice."),
        ("@alice@-host", 1, "@alice@-host"),
    ] {
        assert_eq!(
            error(text),
            QueryError::InvalidAccount {
                column,
                token: token.to_owned()
            },
            "{text}"
        );
    }
}

#[test]
fn given_an_unknown_language_code_when_parsed_then_it_is_reported() {
    let e = error("hark lang:xx");
    assert_eq!(
        e,
        QueryError::InvalidLanguage {
            column: 6,
            code: "xx".to_owned()
        }
    );
    assert!(
        e.to_string()
            .starts_with("column 6: `xx` is not an ISO 639-1 language code")
    );
    assert!(matches!(
        error("hark lang:english"),
        QueryError::InvalidLanguage { .. }
    ));
    assert!(matches!(
        error("hark lang:"),
        QueryError::InvalidLanguage { .. }
    ));
}

#[test]
fn given_a_query_of_only_exclusions_when_parsed_then_nothing_to_look_for_is_reported() {
    let e = error("-hiring");
    assert_eq!(e, QueryError::NothingToLookFor { column: 1 });
    assert!(e.to_string().contains("would match almost every mention"));
    assert_eq!(
        error("NOT hark"),
        QueryError::NothingToLookFor { column: 1 }
    );
    assert_eq!(error("-a -b"), QueryError::NothingToLookFor { column: 1 });
    assert_eq!(error("lang:de"), QueryError::NothingToLookFor { column: 1 });
    assert_eq!(
        error("hark OR -hiring"),
        QueryError::NothingToLookFor { column: 9 }
    );
    assert_eq!(
        error("hark OR (lang:de -x)"),
        QueryError::NothingToLookFor { column: 10 }
    );
    // Two of the three negations cancel; the error points at the one that remains.
    assert_eq!(
        error("-(-(-hark))"),
        QueryError::NothingToLookFor { column: 5 }
    );
}

#[test]
fn given_each_error_when_asked_then_column_is_exposed() {
    assert_eq!(error("hark \"x").column(), Some(6));
    assert_eq!(error("").column(), None);
}

// ---------------------------------------------------------------------------------------------
// Canonical form
// ---------------------------------------------------------------------------------------------

#[test]
fn given_queries_when_displayed_then_the_canonical_form_is_minimal() {
    for (text, canonical) in [
        (
            "(hark OR #HarkApp) AND NOT hiring",
            "(hark OR #harkapp) -hiring",
        ),
        ("a AND b OR c", "a b OR c"),
        ("NOT (a OR b) c", "-(a OR b) c"),
        ("hark -(a b)", "hark -(a b)"),
        (
            "\"Hark  the   App\" @Alice lang:DE",
            "\"hark the app\" @alice lang:de",
        ),
        ("\"lang:de\"", "\"lang:de\""),
        ("((a))", "a"),
        ("a (b OR (c d))", "a (b OR c d)"),
    ] {
        assert_eq!(parse(text).to_string(), canonical, "{text}");
    }
}

#[test]
fn given_queries_when_displayed_and_reparsed_then_the_ast_is_the_same() {
    for text in [
        "(hark OR #harkapp) -hiring",
        "\"lang:de\" hark",
        "-(a OR b) c OR d -e",
        "@alice@mastodon.social OR @bob.bsky.social",
        "日本語 OR 🎉 OR Straße",
        "hark -lang:en",
        "e-mail hark's",
    ] {
        let query = parse(text);
        assert_eq!(parse(&query.to_string()), query, "{text}");
    }
}

#[test]
fn given_a_query_when_serialised_then_it_is_its_source_and_deserialises_back() {
    let query = parse("(hark OR #harkapp) -hiring");
    let json = serde_json::to_string(&query).expect("serialise");
    assert_eq!(json, "\"(hark OR #harkapp) -hiring\"");
    let back: Query = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, query);
    let invalid = serde_json::from_str::<Query>("\"hark OR\"").expect_err("invalid query");
    assert!(
        invalid
            .to_string()
            .contains("column 6: expected a term after `OR`")
    );
}

// ---------------------------------------------------------------------------------------------
// Matching
// ---------------------------------------------------------------------------------------------

#[test]
fn given_a_word_when_matching_then_case_is_ignored_and_word_boundaries_respected() {
    assert!(matches("hark", "HARK is great"));
    assert!(matches("hark", "Hark!"));
    assert!(matches("hark", "(hark)"));
    assert!(matches("hark", "I love #hark"));
    assert!(matches("hark", "Hark's new release"));
    assert!(matches("hark", "Hark’s new release"));
    assert!(!matches("hark", "sharks are fish"));
    assert!(!matches("hark", "harken to me"));
    assert!(!matches("hark", "see hark.app"));
    assert!(!matches("hark", "#harkapp"));
}

#[test]
fn given_a_hashtag_when_matching_then_only_the_hashtag_matches() {
    assert!(matches("#hark", "Loving #Hark today"));
    assert!(matches("#hark", "#hark-app is the tag hark"));
    assert!(matches("#hark", "end of sentence #hark."));
    assert!(!matches("#hark", "hark without a tag"));
    assert!(!matches("#hark", "#harkapp"));
    assert!(!matches("#hark", "a#hark is not a tag"));
    assert!(matches("#日本語", "#日本語 のアプリ"));
}

#[test]
fn given_umlauts_and_sharp_s_when_matching_then_simple_lower_casing_applies() {
    assert!(matches("übung", "Übung macht den Meister"));
    assert!(matches("Übung", "tägliche übung"));
    assert!(matches("Straße", "die straße"));
    assert!(matches("straße", "DIE STRAẞE"));
    assert!(!matches("strasse", "die Straße"), "no ß → ss folding");
    assert!(!matches("übung", "Ubung"), "no accent folding");
    assert!(matches("café", "Café au lait"));
    assert!(matches("İstanbul", "istanbul"));
    assert!(matches("istanbul", "İSTANBUL"));
}

#[test]
fn given_greek_final_sigma_when_matching_then_it_equals_sigma() {
    assert!(matches("ΟΔΟΣ", "η οδος"));
}

#[test]
fn given_emoji_when_matching_then_they_are_words_ignoring_skin_tone_and_presentation() {
    assert!(matches("🎉", "Launch day 🎉🎉"));
    assert!(matches("👍", "nice 👍🏽"));
    assert!(matches("❤", "I ❤️ hark"));
    assert!(matches("hark 🎉", "🎉hark"));
    assert!(!matches("🎉", "launch day"));
    assert!(!matches("🎉", "🎊"));
}

#[test]
fn given_cjk_when_matching_then_ideographs_match_as_consecutive_words() {
    assert!(matches("日本", "日本語のアプリ"));
    assert!(!matches("東京", "日本語のアプリ"));
    assert!(!matches("本日", "日本"));
}

#[test]
fn given_a_phrase_when_matching_then_its_words_must_be_consecutive_ignoring_punctuation() {
    assert!(matches("\"hark the\"", "Hark, the herald"));
    assert!(matches("\"hark app\"", "the hark – app!"));
    assert!(!matches("\"hark app\"", "app hark"));
    assert!(!matches("\"hark app\"", "hark new app"));
    assert!(!matches("\"hark app\"", "hark"));
}

#[test]
fn given_a_user_only_account_when_matching_then_mentions_and_authors_on_any_host_match() {
    assert!(matches("@alice", "thanks @alice!"));
    assert!(matches("@alice", "cc @Alice@mastodon.social"));
    assert!(matches("@alice", "cc @alice.bsky.social."));
    assert!(!matches("@alice", "cc @alicex"));
    assert!(!matches("@alice", "mail bob@alice.com"));
    assert!(!matches("@alice", "alice without an at"));
    assert!(matches_by("@alice", "hello", "alice"));
    assert!(matches_by("@alice", "hello", "@Alice@mastodon.social"));
    assert!(matches_by("@alice", "hello", "alice.bsky.social"));
    assert!(!matches_by("@alice", "hello", "bob"));
    assert!(!matches_by("@alice", "hello", "alicex.bsky.social"));
}

#[test]
fn given_a_full_handle_when_matching_then_only_that_handle_matches() {
    let q = "@alice@mastodon.social";
    assert!(matches(q, "hi @alice@mastodon.social"));
    assert!(!matches(q, "hi @alice@other.example"));
    assert!(!matches(q, "hi @alice"));
    assert!(matches_by(q, "hello", "Alice@Mastodon.social"));
    assert!(!matches_by(q, "hello", "alice"));
    let q = "@alice.bsky.social";
    assert!(matches(q, "hi @alice.bsky.social"));
    assert!(matches_by(q, "hello", "alice.bsky.social"));
    assert!(!matches_by(q, "hello", "alice"));
}

#[test]
fn given_a_plain_word_when_the_text_mentions_it_as_an_account_then_it_matches() {
    assert!(matches("alice", "thanks @alice.bsky.social"));
}

#[test]
fn given_a_language_filter_when_matching_then_the_primary_subtag_is_compared() {
    assert!(matches_in("hark lang:de", "hark ist toll", Some("de")));
    assert!(matches_in("hark lang:de", "hark ist toll", Some("de-AT")));
    assert!(matches_in("hark lang:de", "hark ist toll", Some("DE")));
    assert!(!matches_in("hark lang:de", "hark is great", Some("en")));
    assert!(!matches_in("hark lang:de", "hark ist toll", None));
    assert!(matches_in("hark -lang:en", "hark ist toll", None));
}

#[test]
fn given_exclusions_when_matching_then_excluded_mentions_do_not_match() {
    let q = "(hark OR #harkapp) -hiring";
    assert!(matches(q, "Hark ships 1.0"));
    assert!(matches(q, "new #HarkApp release"));
    assert!(!matches(q, "Hark is hiring"));
    assert!(!matches(q, "#harkapp: we're HIRING"));
    assert!(!matches(q, "harkapp without the tag"));
    assert!(!matches("hark -#jobs", "hark #jobs"));
    assert!(matches("hark -#jobs", "hark jobs"));
    assert!(!matches("hark -\"we are hiring\"", "Hark: we are hiring!"));
    assert!(matches("hark -\"we are hiring\"", "are we hiring at hark?"));
    assert!(!matches("hark -(jobs OR hiring)", "hark jobs"));
    assert!(matches("hark -(jobs hiring)", "hark jobs"));
}

#[test]
fn given_lower_case_keywords_when_matching_then_they_are_required_words() {
    assert!(matches("cats and dogs", "Cats and dogs"));
    assert!(!matches("cats and dogs", "cats, dogs"));
}

#[test]
fn given_one_prepared_text_when_matched_against_many_queries_then_results_equal_matches() {
    let text = "Hark 1.0 🎉 thanks @alice@mastodon.social #HarkApp";
    let prepared = PreparedText::new(text);
    for (q, expected) in [
        ("hark", true),
        ("#harkapp", true),
        ("@alice", true),
        ("🎉 -hiring", true),
        ("hark lang:de", true),
        ("sharks", false),
        ("#hark", false),
    ] {
        let query = parse(q);
        let input = MatchInput {
            text,
            author: None,
            lang: Some("de"),
        };
        assert_eq!(query.matches(&input), expected, "{q}");
        assert_eq!(
            query.matches_prepared(&prepared, None, Some("de")),
            expected,
            "{q}"
        );
    }
}

#[test]
fn given_a_prepared_text_when_inspected_then_words_hashtags_and_mentions_are_exposed() {
    let prepared = PreparedText::new("Hark's #App, by @Bob@Host.example. Sharks!");
    assert_eq!(
        prepared.words().collect::<Vec<_>>(),
        ["hark's", "app", "by", "bob", "host.example", "sharks"]
    );
    assert_eq!(prepared.hashtags().collect::<Vec<_>>(), ["app"]);
    assert_eq!(
        prepared.mentions().collect::<Vec<_>>(),
        ["bob@host.example"]
    );
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

#[test]
fn given_the_example_query_when_compiled_then_each_platform_gets_its_syntax() {
    let query = parse("(hark OR #harkapp) -hiring");
    assert_eq!(query.to_x(), "(hark OR #harkapp) -hiring");
    assert_eq!(query.to_reddit(), "(hark OR harkapp) AND NOT hiring");
    assert_eq!(
        query.keyword_queries(10, KeywordStyle::Hashtags),
        ["hark", "#harkapp"]
    );
    assert_eq!(
        query.keyword_queries(10, KeywordStyle::Plain),
        ["hark", "harkapp"]
    );
    assert_eq!(query.hashtags(), ["harkapp"]);
    assert_eq!(query.hashtag_cover(), None);
    assert_eq!(query.languages(), None);
}

#[test]
fn given_group_negations_when_compiled_for_x_then_they_are_pushed_down_or_dropped() {
    assert_eq!(parse("c -(a OR b)").to_x(), "c -a -b");
    assert_eq!(
        parse("c -(a b)").to_x(),
        "c",
        "negation-only alternatives are dropped"
    );
    assert_eq!(
        parse("c -(a -b)").to_x(),
        "c",
        "(-a OR b) has a negation-only alternative"
    );
    assert_eq!(parse("c -(-a -b)").to_x(), "c (a OR b)");
}

#[test]
fn given_atoms_when_compiled_for_x_then_x_operators_are_used() {
    assert_eq!(parse("a b OR c").to_x(), "(a b) OR c");
    assert_eq!(parse("\"hark app\" lang:de").to_x(), "\"hark app\" lang:de");
    assert_eq!(parse("hark -lang:en").to_x(), "hark -lang:en");
    assert_eq!(parse("hark's").to_x(), "\"hark's\"");
    assert_eq!(parse("\"or\"").to_x(), "\"or\"");
    assert_eq!(parse("@alice").to_x(), "(@alice OR from:alice)");
    assert_eq!(parse("hark -@bob").to_x(), "hark -@bob -from:bob");
    assert_eq!(
        parse("@alice@mastodon.social").to_x(),
        "\"alice@mastodon.social\""
    );
    assert_eq!(parse("hark -@bob.bsky.social").to_x(), "hark");
}

#[test]
fn given_atoms_when_compiled_for_reddit_then_unsupported_parts_broaden() {
    assert_eq!(parse("a b OR c").to_reddit(), "(a AND b) OR c");
    assert_eq!(parse("hark lang:de").to_reddit(), "hark");
    assert_eq!(parse("hark -#jobs").to_reddit(), "hark");
    assert_eq!(parse("hark -jobs").to_reddit(), "hark AND NOT jobs");
    assert_eq!(parse("@alice_b").to_reddit(), "(alice_b OR author:alice_b)");
    assert_eq!(
        parse("hark -@bob_c").to_reddit(),
        "hark AND NOT author:bob_c"
    );
    assert_eq!(
        parse("c -(a OR \"x y\")").to_reddit(),
        "c AND NOT a AND NOT \"x y\""
    );
}

#[test]
fn given_a_product_of_alternatives_when_compiled_to_keywords_then_the_dnf_is_listed() {
    let query = parse("(a OR b) (c OR d) -e lang:de");
    assert_eq!(
        query.keyword_queries(10, KeywordStyle::Plain),
        ["a c", "a d", "b c", "b d"]
    );
}

#[test]
fn given_a_dnf_wider_than_max_when_compiled_then_and_operands_are_dropped() {
    let query = parse("(a OR b) (c OR d)");
    assert_eq!(query.keyword_queries(2, KeywordStyle::Plain), ["a", "b"]);
}

#[test]
fn given_disjuncts_sharing_a_term_when_over_budget_then_the_shared_term_covers_them() {
    let query = parse("(a b) OR (a c) OR (a d)");
    assert_eq!(
        query.keyword_queries(3, KeywordStyle::Plain),
        ["a b", "a c", "a d"]
    );
    assert_eq!(query.keyword_queries(2, KeywordStyle::Plain), ["a"]);
}

#[test]
fn given_more_alternatives_than_max_when_compiled_then_none_is_dropped() {
    let query = parse("a OR b OR c");
    assert_eq!(
        query.keyword_queries(2, KeywordStyle::Plain),
        ["a", "b", "c"]
    );
    assert_eq!(
        query.keyword_queries(0, KeywordStyle::Plain),
        ["a", "b", "c"]
    );
}

#[test]
fn given_redundant_alternatives_when_compiled_then_they_are_absorbed() {
    assert_eq!(
        parse("a OR (a b) OR a").keyword_queries(10, KeywordStyle::Plain),
        ["a"]
    );
    assert_eq!(
        parse("hark OR #hark").keyword_queries(10, KeywordStyle::Plain),
        ["hark"]
    );
    assert_eq!(
        parse("hark OR #hark").keyword_queries(10, KeywordStyle::Hashtags),
        ["hark", "#hark"]
    );
}

#[test]
fn given_accounts_and_phrases_when_compiled_to_keywords_then_they_are_searchable_text() {
    assert_eq!(
        parse("@alice@mastodon.social \"hark app\" OR @bob.bsky.social")
            .keyword_queries(10, KeywordStyle::Hashtags),
        ["alice \"hark app\"", "bob.bsky.social"]
    );
    assert_eq!(
        parse("\"lang:de\" hark").keyword_queries(10, KeywordStyle::Plain),
        ["\"lang:de\" hark"]
    );
}

#[test]
fn given_a_large_blowup_when_compiled_then_queries_stay_within_max_and_cover_matches() {
    let groups: Vec<String> = (0..12).map(|i| format!("(a{i} OR b{i})")).collect();
    let query = parse(&groups.join(" "));
    let queries = query.keyword_queries(16, KeywordStyle::Plain);
    assert!(!queries.is_empty() && queries.len() <= 16, "{queries:?}");

    let text: String = (0..12).map(|i| format!("b{i} ")).collect();
    assert!(query.matches(&MatchInput {
        text: &text,
        ..MatchInput::default()
    }));
    let prepared = PreparedText::new(&text);
    assert!(
        queries
            .iter()
            .any(|q| q.split(' ').all(|w| prepared.has_word(w))),
        "no keyword query finds {text}: {queries:?}"
    );
}

#[test]
fn given_a_hostile_product_and_a_huge_budget_when_compiled_then_the_budget_is_clamped() {
    // 2^45 disjuncts if expanded: the clamp keeps the plan at MAX_KEYWORD_QUERIES.
    let groups: Vec<String> = (0..45).map(|i| format!("(a{i} OR b{i})")).collect();
    let query = parse(&groups.join(" "));
    let queries = query.keyword_queries(usize::MAX, KeywordStyle::Plain);
    assert!(!queries.is_empty() && queries.len() <= MAX_KEYWORD_QUERIES);
}

#[test]
fn given_hashtag_only_alternatives_when_asked_then_the_hashtag_cover_is_known() {
    assert_eq!(
        parse("#a OR #b").hashtag_cover(),
        Some(vec!["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(
        parse("#a hark -#b").hashtag_cover(),
        Some(vec!["a".to_owned()])
    );
    assert_eq!(
        parse("(#a hark) OR (#b #c)").hashtag_cover(),
        Some(vec!["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(parse("hark OR #a").hashtag_cover(), None);
    assert_eq!(parse("hark -#a").hashtag_cover(), None);
}

#[test]
fn given_language_filters_when_asked_then_the_language_cover_is_known() {
    assert_eq!(
        parse("hark lang:de").languages(),
        Some(vec!["de".to_owned()])
    );
    assert_eq!(
        parse("(hark lang:de) OR (hiring lang:en)").languages(),
        Some(vec!["de".to_owned(), "en".to_owned()])
    );
    assert_eq!(parse("hark OR (app lang:de)").languages(), None);
    assert_eq!(parse("hark -lang:de").languages(), None);
}

#[test]
fn given_accounts_and_hashtags_when_listed_then_only_positive_ones_appear() {
    let query = parse("@alice OR #a OR hark -@bob -#b -(-#c)");
    assert_eq!(query.accounts(), ["alice"]);
    assert_eq!(query.hashtags(), ["a", "c"]);
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Query-like text: syntax pieces glued with or without spaces.
fn query_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("AND".to_owned()),
        Just("OR".to_owned()),
        Just("NOT".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("-".to_owned()),
        Just("\"".to_owned()),
        Just("lang:de".to_owned()),
        Just("@alice@host.example".to_owned()),
        "[a-zA-Zäöüß日本🎉#@:.'’-]{1,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec((piece, prop::bool::ANY), 0..14).prop_map(|pieces| {
        pieces
            .into_iter()
            .map(|(p, space)| if space { p + " " } else { p })
            .collect()
    })
}

const WORDS: [&str; 8] = [
    "hark", "app", "hiring", "straße", "übung", "🎉", "or", "the",
];
const TAGS: [&str; 3] = ["hark", "harkapp", "jobs"];
const HANDLES: [&str; 3] = ["alice", "alice@host.example", "bob.bsky.social"];

fn positive_leaf(accounts: bool) -> BoxedStrategy<Expr> {
    let mut choices = vec![
        prop::sample::select(WORDS.to_vec())
            .prop_map(|w| Expr::Word(w.to_owned()))
            .boxed(),
        prop::sample::select(vec![["hark", "app"], ["the", "app"]])
            .prop_map(|p| Expr::Phrase(p.iter().map(|w| (*w).to_owned()).collect()))
            .boxed(),
        prop::sample::select(TAGS.to_vec())
            .prop_map(|t| Expr::Hashtag(t.to_owned()))
            .boxed(),
    ];
    if accounts {
        choices.push(
            prop::sample::select(HANDLES.to_vec())
                .prop_map(|h| Expr::Account(h.to_owned()))
                .boxed(),
        );
    }
    prop::strategy::Union::new(choices).boxed()
}

/// A random query over a small vocabulary, always with something to look for.
fn small_query(accounts: bool) -> impl Strategy<Value = Query> {
    let leaf = prop_oneof![
        4 => positive_leaf(accounts),
        1 => prop::sample::select(vec!["de", "en"]).prop_map(|c| Expr::Lang(c.to_owned())),
    ];
    let tree = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    });
    (positive_leaf(accounts), tree, prop::bool::ANY).prop_map(|(anchor, tree, anchor_in_or)| {
        // `a AND tree` always has something to look for; `a OR tree` often does.
        let candidate = if anchor_in_or {
            Expr::Or(vec![anchor.clone(), tree.clone()])
        } else {
            Expr::And(vec![anchor.clone(), tree.clone()])
        };
        Query::parse(&candidate.to_string())
            .or_else(|_| Query::parse(&Expr::And(vec![anchor, tree]).to_string()))
            .unwrap_or_else(|e| panic!("a generated query must parse: {e}"))
    })
}

/// Mention-like text over the same vocabulary, in varied case and punctuation.
fn small_text() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "hark",
        "Hark",
        "HARK",
        "app",
        "App",
        "hiring",
        "Straße",
        "STRAẞE",
        "Übung",
        "🎉",
        "👍🏽",
        "the",
        "or",
        "#hark",
        "#HarkApp",
        "#jobs",
        "@alice",
        "@Alice@host.example",
        "@bob.bsky.social",
        "@alice@other.example",
        "sharks",
        "hark's",
    ]);
    let separator = prop::sample::select(vec![" ", " ", ", ", "! ", "", " - "]);
    prop::collection::vec((token, separator), 0..10)
        .prop_map(|parts| parts.into_iter().map(|(t, s)| format!("{t}{s}")).collect())
}

fn language() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec!["de", "en", "de-AT"]))
}

/// Whether every term of a keyword conjunction is present in the text (what the platform's
/// keyword search would require).
fn conjunction_present(terms: &[KeywordTerm], conj: &[usize], text: &PreparedText) -> bool {
    conj.iter().all(|&i| match &terms[i] {
        KeywordTerm::Word(word) => text.has_word(word),
        KeywordTerm::Phrase(words) => text.has_phrase(words),
        KeywordTerm::Hashtag(tag) => text.has_hashtag(tag),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_arbitrary_strings_never_panic_the_parser(text in any::<String>()) {
        let _ = Query::parse(&text);
    }

    #[test]
    fn prop_parsed_arbitrary_strings_round_trip_through_display(text in any::<String>()) {
        if let Ok(query) = Query::parse(&text) {
            let shown = query.to_string();
            prop_assert_eq!(Query::parse(&shown), Ok(query), "shown as {}", shown);
        }
    }

    #[test]
    fn prop_parsed_query_like_strings_round_trip_through_display(text in query_like()) {
        if let Ok(query) = Query::parse(&text) {
            let shown = query.to_string();
            let reparsed = Query::parse(&shown);
            prop_assert_eq!(reparsed.as_ref(), Ok(&query), "shown as {}", shown);
            prop_assert_eq!(reparsed.map(|q| q.to_string()), Ok(shown));
        }
    }

    #[test]
    fn prop_generated_queries_round_trip_through_display(query in small_query(true)) {
        prop_assert_eq!(Query::parse(&query.to_string()), Ok(query));
    }

    #[test]
    fn prop_matching_arbitrary_input_never_panics(
        query in small_query(true),
        text in any::<String>(),
        author in prop::option::of(any::<String>()),
        lang in prop::option::of(any::<String>()),
    ) {
        let input = MatchInput { text: &text, author: author.as_deref(), lang: lang.as_deref() };
        let _ = query.matches(&input);
    }

    #[test]
    fn prop_keyword_queries_are_never_narrower_than_the_query(
        query in small_query(true),
        text in small_text(),
        lang in language(),
        max in 1usize..6,
    ) {
        let input = MatchInput { text: &text, author: None, lang };
        if query.matches(&input) {
            let prepared = PreparedText::new(&text);
            for style in [KeywordStyle::Hashtags, KeywordStyle::Plain] {
                let (terms, conjunctions) = query.keyword_plan(max, style);
                prop_assert!(
                    conjunctions.iter().any(|c| conjunction_present(&terms, c, &prepared)),
                    "{:?} matches {:?} but no keyword query finds it: {:?}",
                    query.to_string(), text, query.keyword_queries(max, style)
                );
                prop_assert!(
                    conjunctions.len() <= max || conjunctions.iter().all(|c| c.len() == 1),
                    "over budget without falling back to single terms"
                );
            }
        }
    }

    #[test]
    fn prop_x_and_reddit_searches_are_never_narrower_than_the_query(
        query in small_query(false),
        text in small_text(),
        lang in language(),
    ) {
        // Without accounts, both dialects are a subset of our syntax: read them back as queries.
        let x = Query::parse(&query.to_x());
        let reddit = Query::parse(&query.to_reddit());
        prop_assert!(x.is_ok(), "X search {:?} does not parse: {:?}", query.to_x(), x);
        prop_assert!(reddit.is_ok(), "Reddit search {:?} does not parse: {:?}", query.to_reddit(), reddit);
        let input = MatchInput { text: &text, author: None, lang };
        if query.matches(&input) {
            prop_assert!(x.is_ok_and(|x| x.matches(&input)), "X search {} misses {:?}", query.to_x(), text);
            prop_assert!(
                reddit.is_ok_and(|r| r.matches(&input)),
                "Reddit search {} misses {:?}", query.to_reddit(), text
            );
        }
    }
}
