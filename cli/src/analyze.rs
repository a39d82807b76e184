//! `hark analyze` (language and sentiment of stdin lines, the processor's own code path)
//! and `hark mentions` (stored mentions as JSON lines).

use std::io::{BufRead, Write};

use hark_shared::analysis::{Analyzer, Language, Languages};
use hark_shared::domain::Mention;
use serde::Serialize;

/// Why `hark analyze` could not run.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("--lang: {0}")]
    Lang(#[from] hark_shared::analysis::LanguageError),
    #[error("cannot build the analyzer")]
    Analyzer(#[from] hark_shared::analysis::AnalyzerError),
    #[error("reading stdin or writing stdout failed")]
    Io(#[from] std::io::Error),
}

/// One output line of `hark analyze`.
#[derive(Debug, Serialize)]
struct AnalyzedLine<'a> {
    lang: &'a str,
    sentiment: SentimentOut,
}

#[derive(Debug, Serialize)]
struct SentimentOut {
    label: hark_shared::domain::SentimentLabel,
    compound: f64,
    pos: f64,
    neu: f64,
    neg: f64,
}

/// Reads one text per line from `input`, writes one JSON object per line to `output`.
/// Empty lines are analysed too (as `und`), so output lines match input lines one to one.
pub fn analyze(
    languages: &[String],
    forced: Option<&str>,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<usize, AnalyzeError> {
    if let Some(code) = forced {
        Language::from_code(code)?;
    }
    let analyzer = Analyzer::new(Languages::from_codes(languages)?)?;
    let mut count = 0;
    for line in input.lines() {
        let line = line?;
        let a = analyzer.analyze(&line, forced);
        let out = AnalyzedLine {
            lang: &a.lang,
            sentiment: SentimentOut {
                label: a.sentiment.label,
                compound: a.sentiment.compound,
                pos: a.sentiment.pos,
                neu: a.sentiment.neu,
                neg: a.sentiment.neg,
            },
        };
        serde_json::to_writer(&mut output, &out).map_err(std::io::Error::other)?;
        output.write_all(b"\n")?;
        count += 1;
    }
    output.flush()?;
    Ok(count)
}

/// The JSON line of one mention in `hark mentions --json` (the documented contract).
#[derive(Debug, Serialize)]
pub struct MentionLine<'a> {
    pub platform: &'a str,
    pub native_id: &'a str,
    pub url: &'a str,
    pub author: &'a str,
    pub author_name: Option<&'a str>,
    pub followers: Option<u64>,
    pub text: &'a str,
    pub created_at: String,
    pub lang: &'a str,
    pub sentiment: Option<SentimentBrief>,
    pub campaigns: &'a [String],
    pub source: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct SentimentBrief {
    pub label: hark_shared::domain::SentimentLabel,
    pub compound: f64,
}

impl<'a> From<&'a Mention> for MentionLine<'a> {
    fn from(m: &'a Mention) -> Self {
        MentionLine {
            platform: m.platform.as_str(),
            native_id: &m.native_id,
            url: &m.url,
            author: &m.author.handle,
            author_name: m.author.display_name.as_deref(),
            followers: m.author.followers,
            text: &m.text,
            created_at: m.created_at.to_string(),
            lang: m.lang.as_deref().unwrap_or("und"),
            sentiment: m.sentiment.map(|s| SentimentBrief {
                label: s.label,
                compound: s.compound,
            }),
            campaigns: &m.campaigns,
            source: m.source_id.as_deref(),
        }
    }
}

/// Writes mentions as JSON lines, or as a short table for people.
pub fn print_mentions(
    mentions: &[Mention],
    json: bool,
    mut out: impl Write,
) -> std::io::Result<()> {
    for m in mentions {
        if json {
            serde_json::to_writer(&mut out, &MentionLine::from(m))
                .map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
        } else {
            let label = m
                .sentiment
                .map(|s| format!("{:?}", s.label).to_lowercase())
                .unwrap_or_else(|| "-".into());
            let text: String = m
                .text
                .chars()
                .take(80)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            writeln!(
                out,
                "{}  {:<10}  {:<3}  {:<8}  {:<20}  {}",
                m.created_at.strftime("%Y-%m-%d %H:%M"),
                m.platform.as_str(),
                m.lang.as_deref().unwrap_or("und"),
                label,
                m.author.handle.chars().take(20).collect::<String>(),
                text
            )?;
        }
    }
    if !json && mentions.is_empty() {
        writeln!(
            out,
            "(no mentions yet: `hark run --once` polls the sources)"
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, forced: Option<&str>) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        analyze(
            &["en".into(), "de".into()],
            forced,
            input.as_bytes(),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn given_lines_then_one_json_object_per_line_with_lang_and_sentiment() {
        let out = run(
            "VADER is smart, handsome, and funny.\nDas ist wirklich ein schrecklicher, furchtbarer Tag, ich hasse es.\n\n",
            None,
        );
        assert_eq!(out.len(), 3);
        assert_eq!(out[0]["lang"], "en");
        assert_eq!(
            out[0]["sentiment"]["compound"], 0.8316,
            "the reference VADER score"
        );
        assert_eq!(out[0]["sentiment"]["label"], "positive");
        assert_eq!(out[1]["lang"], "de");
        assert_eq!(out[1]["sentiment"]["label"], "negative");
        assert_eq!(out[2]["lang"], "und");
        assert_eq!(out[2]["sentiment"]["label"], "unknown");
    }

    #[test]
    fn given_a_forced_language_then_detection_is_skipped() {
        let out = run("hark", Some("en"));
        assert_eq!(out[0]["lang"], "en");
        assert_ne!(out[0]["sentiment"]["label"], "unknown");
    }

    #[test]
    fn given_an_unknown_forced_language_then_a_clear_error() {
        let err = analyze(&["en".into()], Some("xx"), "hi".as_bytes(), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("xx"), "{err}");
    }
}
