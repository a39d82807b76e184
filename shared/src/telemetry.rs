//! One place that sets up tracing for every binary.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (a terminal).
    Text,
    /// One JSON object per line (Lambda, log pipelines).
    Json,
}

impl LogFormat {
    /// JSON when Lambda asks for it (`AWS_LAMBDA_LOG_FORMAT=JSON`) or `HARK_LOG_FORMAT=json`.
    pub fn from_env() -> Self {
        let lambda = std::env::var("AWS_LAMBDA_LOG_FORMAT").unwrap_or_default();
        let hark = std::env::var("HARK_LOG_FORMAT").unwrap_or_default();
        if lambda.eq_ignore_ascii_case("json") || hark.eq_ignore_ascii_case("json") {
            LogFormat::Json
        } else {
            LogFormat::Text
        }
    }
}

/// Installs the global subscriber, writing to stderr. The level comes from `RUST_LOG`,
/// else `AWS_LAMBDA_LOG_LEVEL`, else `default_level`. Calling it twice is harmless.
pub fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok())
        .map(|l| l.to_lowercase())
        .unwrap_or_else(|| default_level.to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
