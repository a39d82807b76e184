//! Plain text from the HTML that platforms send (Mastodon statuses, Hacker News comments,
//! feed summaries): tags stripped, entities decoded, whitespace collapsed.
//!
//! A small hand-written scanner instead of an HTML parser crate: the inputs are short
//! fragments, we only need text (never a DOM), and the scanner never fails — broken markup
//! degrades to less text, not to an error or a panic.

/// Converts an HTML fragment to plain text.
///
/// - Tags are removed; `<br>` becomes a line break, paragraphs are separated by a blank
///   line, other block elements (`div`, `li`, headings, …) start a new line, table cells
///   are separated by a space. `<script>`/`<style>` bodies and comments are dropped.
/// - Entities are decoded: the common named ones (`&amp;`, `&nbsp;`, `&hellip;`, `&rsquo;`,
///   …) and every numeric one (`&#233;`, `&#x1F980;`); unknown named entities stay as
///   written.
/// - Links keep their text, except URL-looking links whose visible text is shortened
///   (Mastodon shows `example.com/long…` with the rest in hidden spans): those become the
///   `href`, which is the real URL.
/// - Runs of whitespace collapse to one space (at most one blank line between paragraphs);
///   the result is trimmed.
///
/// Markup cut off at the end of the input (`<b`, `<!-- …`) is dropped.
pub fn html_to_text(html: &str) -> String {
    let mut out = TextBuilder::default();
    let mut anchor: Option<Anchor> = None;
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        if rest.starts_with('<') {
            match scan_markup(rest) {
                Markup::LiteralLt => {
                    emit_char(&mut out, &mut anchor, '<');
                    i += 1;
                }
                Markup::Unterminated => break,
                Markup::Skip { len } => i += len,
                Markup::Tag(tag) => {
                    i += tag.len;
                    if !tag.closing && !tag.self_closing && is_raw_text(&tag.name) {
                        // Skip the body up to (and including) the matching end tag.
                        i += skip_raw_text(&html[i..], &tag.name);
                        continue;
                    }
                    handle_tag(&tag, &mut out, &mut anchor);
                }
            }
        } else if rest.starts_with('&') {
            let (decoded, len) = decode_entity(rest);
            for c in decoded.chars() {
                emit_char(&mut out, &mut anchor, c);
            }
            i += len;
        } else {
            // Copy the plain run up to the next markup or entity in one go.
            let run_end = rest.find(['<', '&']).unwrap_or(rest.len());
            for c in rest[..run_end].chars() {
                emit_char(&mut out, &mut anchor, c);
            }
            i += run_end;
        }
    }
    if let Some(a) = anchor.take() {
        a.finish(&mut out);
    }
    out.finish()
}

/// Collapses every run of whitespace (newlines included) to one space and trims: for text
/// that is already plain (RSS titles declared `text/plain`).
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A link being read: its text is buffered until `</a>` decides between text and href.
struct Anchor {
    href: String,
    text: String,
    /// Mastodon marks the visible, shortened part of a long URL with `class="ellipsis"`.
    shortened: bool,
}

impl Anchor {
    fn finish(self, out: &mut TextBuilder) {
        let text = collapse_whitespace(&self.text);
        let chosen = if is_web_url(&self.href) && (self.shortened || url_like(&text, &self.href)) {
            self.href.trim()
        } else {
            text.as_str()
        };
        for c in chosen.chars() {
            out.push_char(c);
        }
    }
}

fn is_web_url(href: &str) -> bool {
    let h = href.trim_start().to_ascii_lowercase();
    h.starts_with("http://") || h.starts_with("https://")
}

/// Whether a link's visible text is (a possibly shortened form of) its href, e.g.
/// `example.com/long…` for `https://www.example.com/long/path`.
fn url_like(text: &str, href: &str) -> bool {
    fn bare(s: &str) -> String {
        let lower = s.trim().to_lowercase();
        let no_scheme = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .unwrap_or(&lower);
        no_scheme
            .strip_prefix("www.")
            .unwrap_or(no_scheme)
            .to_owned()
    }
    let shown = text
        .trim()
        .trim_end_matches('…')
        .trim_end_matches("...")
        .trim_end();
    if shown.is_empty() || shown.chars().any(char::is_whitespace) || !shown.contains('.') {
        return false;
    }
    bare(href).starts_with(&bare(shown))
}

fn emit_char(out: &mut TextBuilder, anchor: &mut Option<Anchor>, c: char) {
    match anchor {
        Some(a) => a.text.push(c),
        None => out.push_char(c),
    }
}

fn handle_tag(tag: &Tag, out: &mut TextBuilder, anchor: &mut Option<Anchor>) {
    match tag.name.as_str() {
        "a" if tag.closing => {
            if let Some(a) = anchor.take() {
                a.finish(out);
            }
        }
        "a" => {
            // A nested <a> is invalid HTML: browsers close the open one first.
            if let Some(a) = anchor.take() {
                a.finish(out);
            }
            if let Some(href) = tag.attr("href") {
                *anchor = Some(Anchor {
                    href: decode_entities(href),
                    text: String::new(),
                    shortened: false,
                });
            }
        }
        "span" if !tag.closing => {
            if let Some(a) = anchor.as_mut()
                && tag
                    .attr("class")
                    .is_some_and(|c| c.split_whitespace().any(|c| c == "ellipsis"))
            {
                a.shortened = true;
            }
        }
        "br" => match anchor {
            Some(a) => a.text.push(' '),
            None => out.push_break(BreakKind::Line),
        },
        "p" => match anchor {
            Some(a) => a.text.push(' '),
            None => out.push_break(BreakKind::Paragraph),
        },
        "td" | "th" => match anchor {
            Some(a) => a.text.push(' '),
            None => out.push_char(' '),
        },
        name if is_block(name) => match anchor {
            Some(a) => a.text.push(' '),
            None => out.push_break(BreakKind::Block),
        },
        _ => {}
    }
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hr"
            | "li"
            | "main"
            | "nav"
            | "ol"
            | "pre"
            | "section"
            | "table"
            | "tr"
            | "ul"
    )
}

/// Elements whose content is not text to show.
fn is_raw_text(name: &str) -> bool {
    matches!(name, "script" | "style" | "template")
}

/// Length of `rest` up to and including `</name ...>`, or all of it when there is none.
fn skip_raw_text(rest: &str, name: &str) -> usize {
    let lower = rest.to_ascii_lowercase();
    let needle = format!("</{name}");
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let start = from + pos;
        let after = start + needle.len();
        // `</scripts>` is not the end of <script>.
        let boundary = lower[after..]
            .chars()
            .next()
            .is_none_or(|c| c == '>' || c == '/' || c.is_ascii_whitespace());
        if boundary {
            return match lower[after..].find('>') {
                Some(gt) => after + gt + 1,
                None => rest.len(),
            };
        }
        from = after;
    }
    rest.len()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum BreakKind {
    Line,
    Block,
    Paragraph,
}

/// What separates the text written so far from the next visible character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Pending {
    #[default]
    Nothing,
    Space,
    Newlines(u8),
}

/// Accumulates visible characters, collapsing whitespace and breaks between them.
#[derive(Default)]
struct TextBuilder {
    out: String,
    pending: Pending,
}

impl TextBuilder {
    fn push_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.pending == Pending::Nothing {
                self.pending = Pending::Space;
            }
            return;
        }
        if !self.out.is_empty() {
            match self.pending {
                Pending::Nothing => {}
                Pending::Space => self.out.push(' '),
                Pending::Newlines(n) => {
                    for _ in 0..n {
                        self.out.push('\n');
                    }
                }
            }
        }
        self.pending = Pending::Nothing;
        self.out.push(c);
    }

    fn push_break(&mut self, kind: BreakKind) {
        let current = match self.pending {
            Pending::Newlines(n) => n,
            _ => 0,
        };
        let wanted = match kind {
            // Each <br> is one more line break, up to one blank line.
            BreakKind::Line => (current + 1).min(2),
            BreakKind::Block => current.max(1),
            BreakKind::Paragraph => 2,
        };
        self.pending = Pending::Newlines(wanted);
    }

    fn finish(self) -> String {
        // Leading separators are never written and trailing ones stay pending, so the
        // text is already trimmed.
        self.out
    }
}

/// One start or end tag.
struct Tag {
    /// Lowercase element name.
    name: String,
    closing: bool,
    self_closing: bool,
    /// `(lowercase name, raw value)` pairs; entities in values are not decoded yet.
    attrs: Vec<(String, String)>,
    /// Bytes from `<` to `>` inclusive.
    len: usize,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

enum Markup {
    /// A `<` that does not start markup (`a < b`): literal text.
    LiteralLt,
    /// Markup that never ends before the input does: dropped with the rest.
    Unterminated,
    /// A comment, doctype or processing instruction of `len` bytes.
    Skip {
        len: usize,
    },
    Tag(Tag),
}

/// Reads the markup at the start of `s` (which starts with `<`).
fn scan_markup(s: &str) -> Markup {
    let b = s.as_bytes();
    if let Some(comment) = s.strip_prefix("<!--") {
        return match comment.find("-->") {
            Some(end) => Markup::Skip { len: 4 + end + 3 },
            None => Markup::Unterminated,
        };
    }
    if s.starts_with("<!") || s.starts_with("<?") {
        return match s.find('>') {
            Some(end) => Markup::Skip { len: end + 1 },
            None => Markup::Unterminated,
        };
    }
    let (closing, name_start) = if b.get(1) == Some(&b'/') {
        (true, 2)
    } else {
        (false, 1)
    };
    if !b.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
        return Markup::LiteralLt;
    }
    let name_end = name_start
        + b[name_start..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'-' || *c == b':'))
            .unwrap_or(b.len() - name_start);
    let name = s[name_start..name_end].to_ascii_lowercase();
    let mut attrs = Vec::new();
    let mut i = name_end;
    let mut self_closing = false;
    loop {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        match b.get(i) {
            None => return Markup::Unterminated,
            Some(b'>') => {
                return Markup::Tag(Tag {
                    name,
                    closing,
                    self_closing,
                    attrs,
                    len: i + 1,
                });
            }
            Some(b'/') => {
                self_closing = true;
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        self_closing = false;
        // Attribute name.
        let an_start = i;
        while b
            .get(i)
            .is_some_and(|c| !(c.is_ascii_whitespace() || matches!(c, b'=' | b'>' | b'/')))
        {
            i += 1;
        }
        let attr_name = s[an_start..i].to_ascii_lowercase();
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        let mut value = String::new();
        if b.get(i) == Some(&b'=') {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            match b.get(i) {
                Some(q @ (b'"' | b'\'')) => {
                    let quote = *q as char;
                    match s[i + 1..].find(quote) {
                        Some(end) => {
                            value = s[i + 1..i + 1 + end].to_owned();
                            i += end + 2;
                        }
                        None => return Markup::Unterminated,
                    }
                }
                _ => {
                    let v_start = i;
                    while b
                        .get(i)
                        .is_some_and(|c| !(c.is_ascii_whitespace() || *c == b'>'))
                    {
                        i += 1;
                    }
                    value = s[v_start..i].to_owned();
                }
            }
        }
        if !attr_name.is_empty() {
            attrs.push((attr_name, value));
        }
    }
}

/// Decodes every entity in `s` (attribute values).
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with('&') {
            let (decoded, len) = decode_entity(rest);
            out.push_str(&decoded);
            i += len;
        } else {
            let end = rest.find('&').unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            i += end;
        }
    }
    out
}

/// Decodes the entity at the start of `s` (which starts with `&`): returns the text and the
/// bytes consumed. Anything that is not a known entity is the literal `&`.
fn decode_entity(s: &str) -> (String, usize) {
    let literal = ("&".to_owned(), 1);
    let b = s.as_bytes();
    if b.get(1) == Some(&b'#') {
        let (hex, digits_start) = match b.get(2) {
            Some(b'x' | b'X') => (true, 3),
            _ => (false, 2),
        };
        let digits = b[digits_start..]
            .iter()
            .take_while(|c| {
                if hex {
                    c.is_ascii_hexdigit()
                } else {
                    c.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 {
            return literal;
        }
        let text = &s[digits_start..digits_start + digits];
        let value = u32::from_str_radix(text, if hex { 16 } else { 10 }).ok();
        // NUL, surrogates and values past U+10FFFF decode to the replacement character
        // (as browsers do).
        let c = value
            .filter(|v| *v != 0)
            .and_then(char::from_u32)
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut len = digits_start + digits;
        if b.get(len) == Some(&b';') {
            len += 1;
        }
        return (c.to_string(), len);
    }
    let name_len = b[1..]
        .iter()
        .take(32)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    if name_len == 0 || b.get(1 + name_len) != Some(&b';') {
        return literal;
    }
    match named_entity(&s[1..1 + name_len]) {
        Some(text) => (text.to_owned(), name_len + 2),
        None => literal,
    }
}

fn named_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" | "AMP" => "&",
        "lt" | "LT" => "<",
        "gt" | "GT" => ">",
        "quot" | "QUOT" => "\"",
        "apos" => "'",
        // A no-break space is just a space in plain text.
        "nbsp" => " ",
        "ensp" | "emsp" | "thinsp" => " ",
        "hellip" => "…",
        "mdash" => "—",
        "ndash" => "–",
        "rsquo" => "\u{2019}",
        "lsquo" => "\u{2018}",
        "rdquo" => "\u{201D}",
        "ldquo" => "\u{201C}",
        "sbquo" => "\u{201A}",
        "bdquo" => "\u{201E}",
        "laquo" => "«",
        "raquo" => "»",
        "euro" => "€",
        "pound" => "£",
        "yen" => "¥",
        "cent" => "¢",
        "copy" => "©",
        "reg" => "®",
        "trade" => "™",
        "deg" => "°",
        "middot" => "·",
        "bull" => "•",
        "rarr" => "→",
        "larr" => "←",
        "harr" => "↔",
        "uarr" => "↑",
        "darr" => "↓",
        "times" => "×",
        "divide" => "÷",
        "sect" => "§",
        "para" => "¶",
        "shy" | "zwnj" | "zwj" => "",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn given_mastodon_paragraphs_and_hashtag_link_when_converted_then_plain_text() {
        let html = "<p>New crate out <a href=\"https://mastodon.example/tags/rustlang\" \
                    class=\"mention hashtag\" rel=\"tag\">#<span>rustlang</span></a></p>\
                    <p>Second&nbsp;para</p>";
        assert_eq!(html_to_text(html), "New crate out #rustlang\n\nSecond para");
    }

    #[test]
    fn given_mastodon_shortened_link_when_converted_then_the_href_is_kept() {
        let html = "<p>Read <a href=\"https://www.example.com/blog/2026/a-very-long-slug?x=1&amp;y=2\" \
                    rel=\"nofollow noopener\" target=\"_blank\"><span class=\"invisible\">https://www.</span>\
                    <span class=\"ellipsis\">example.com/blog/2026/a-very</span><span class=\"invisible\">\
                    -long-slug?x=1&amp;y=2</span></a> now</p>";
        assert_eq!(
            html_to_text(html),
            "Read https://www.example.com/blog/2026/a-very-long-slug?x=1&y=2 now"
        );
    }

    #[test]
    fn given_a_link_with_truncated_url_text_when_converted_then_the_href_is_kept() {
        let html = r#"see <a href="https://example.com/a/b/c">example.com/a/b…</a>"#;
        assert_eq!(html_to_text(html), "see https://example.com/a/b/c");
    }

    #[test]
    fn given_links_with_words_or_mentions_when_converted_then_their_text_is_kept() {
        let html = r#"<a href="https://example.com/x">click here</a> and <span class="h-card"><a href="https://remote.example/@bob" class="u-url mention">@<span>bob</span></a></span>"#;
        assert_eq!(html_to_text(html), "click here and @bob");
    }

    #[test]
    fn given_breaks_and_blocks_when_converted_then_lines_are_kept_and_runs_collapse() {
        assert_eq!(html_to_text("a<br>b<br/><br />c"), "a\nb\n\nc");
        assert_eq!(
            html_to_text("<ul><li>one</li><li>two</li></ul>"),
            "one\ntwo"
        );
        assert_eq!(html_to_text("  lots \n\t of   space  "), "lots of space");
        assert_eq!(
            html_to_text("<table><tr><td>a</td><td>b</td></tr></table>"),
            "a b"
        );
        assert_eq!(html_to_text("<p></p><p> </p>"), "");
    }

    #[test]
    fn given_named_and_numeric_entities_when_converted_then_decoded() {
        assert_eq!(
            html_to_text(
                "&amp; &lt;tag&gt; &quot;q&quot; &#39;s &apos; &hellip; &mdash; &ndash; \
                 &rsquo;&lsquo;&rdquo;&ldquo; &euro; &copy;"
            ),
            "& <tag> \"q\" 's ' … — – \u{2019}\u{2018}\u{201D}\u{201C} € ©"
        );
        assert_eq!(
            html_to_text("&#233;t&#xE9; &#X1F980; &#129408;"),
            "été 🦀 🦀"
        );
    }

    #[test]
    fn given_unknown_or_broken_entities_when_converted_then_left_as_written() {
        assert_eq!(
            html_to_text("&bogus; AT&T & co &#; &#xZZ;"),
            "&bogus; AT&T & co &#; &#xZZ;"
        );
        assert_eq!(
            html_to_text("&#0; &#xD800; &#x110000;"),
            "\u{FFFD} \u{FFFD} \u{FFFD}"
        );
    }

    #[test]
    fn given_emoji_and_non_latin_text_when_converted_then_untouched() {
        assert_eq!(
            html_to_text("<p>Launch day 🚀🎉 — 日本語 too :blobcat:</p>"),
            "Launch day 🚀🎉 — 日本語 too :blobcat:"
        );
    }

    #[test]
    fn given_comments_scripts_and_styles_when_converted_then_dropped() {
        assert_eq!(
            html_to_text(
                "a<!-- hidden <b>x</b> -->b<script>alert('<p>')</script>c<style>p{}</style>d"
            ),
            "abcd"
        );
        assert_eq!(html_to_text("<!DOCTYPE html><?xml version=\"1.0\"?>x"), "x");
    }

    #[test]
    fn given_broken_markup_when_converted_then_no_panic_and_no_markup_left() {
        assert_eq!(html_to_text("a < b and 3<4"), "a < b and 3<4");
        assert_eq!(html_to_text("ok <b"), "ok");
        assert_eq!(html_to_text("ok <a href=\"x"), "ok");
        assert_eq!(html_to_text("x<!-- never closed"), "x");
        assert_eq!(html_to_text("<script>never closed"), "");
        assert_eq!(html_to_text("<a href=\"https://e.com/\">open"), "open");
        assert_eq!(html_to_text("<b title=it's>bold</b>"), "bold");
        assert_eq!(html_to_text("<p attr = \"a>b\">x</p>"), "x");
    }

    #[test]
    fn given_plain_text_when_collapsed_then_one_line() {
        assert_eq!(collapse_whitespace("  a \n b\t\tc "), "a b c");
    }

    /// Well-formed HTML built from elements, attributes and text without markup characters.
    fn well_formed_html() -> impl Strategy<Value = String> {
        let text = "[a-zA-Z0-9 .,!?é🦀\n]{0,12}";
        let leaf = prop_oneof![
            text.prop_map(|t| t.to_string()),
            Just("&amp;".to_owned()),
            Just("<br>".to_owned()),
            Just("&#x1F600;".to_owned()),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            (
                prop::sample::select(vec!["p", "a", "span", "div", "b", "li", "em"]),
                "[a-z0-9 ]{0,8}",
                prop::collection::vec(inner, 0..4),
            )
                .prop_map(|(tag, attr, children)| {
                    format!(
                        "<{tag} class=\"{attr}\" href='https://e.com/{attr}'>{}</{tag}>",
                        children.concat()
                    )
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_input_never_panics(input in any::<String>()) {
            let _ = html_to_text(&input);
        }

        #[test]
        fn arbitrary_markup_soup_never_panics(input in "[<>/&#;a-z\"'= !-]{0,64}") {
            let _ = html_to_text(&input);
        }

        #[test]
        fn well_formed_input_leaves_no_markup(html in well_formed_html()) {
            let text = html_to_text(&html);
            let bytes = text.as_bytes();
            for w in bytes.windows(2) {
                prop_assert!(
                    !(w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!')),
                    "markup left in {text:?} from {html:?}"
                );
            }
            prop_assert_eq!(text.trim(), text.as_str());
            prop_assert!(!text.contains("  "));
        }
    }
}
