//! German sentiment: a compact linear classifier shipped inside the binary.
//!
//! The model is a multinomial logistic regression over hashed features of the text:
//! lowercased word unigrams and bigrams, character n-grams inside word boundaries, emoji and
//! emoticons as tokens of their own, URLs and @mentions replaced by placeholders, and a
//! negation scope marker. `shared/examples/train_german.rs` trains it from `de/train.tsv`
//! (PotTS and SB10k; nothing derived from SentiWS) and writes `de_model.bin`, which is
//! embedded with `include_bytes!` and parsed once per process.
//!
//! Everything the trainer and the runtime must agree on lives here, in one place: the feature
//! extractor, the model file format, the data splits and the metric.
//!
//! # Model file (`de_model.bin`, little endian)
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `HARKSDE1` |
//! | 8..10 | format version (`u16`, [`FORMAT_VERSION`]) |
//! | 10..12 | feature extractor version (`u16`, [`FEATURES_VERSION`]) |
//! | 12 | hash bits `b` (2^b buckets) |
//! | 13, 14 | shortest and longest character n-gram (0, 0 = none) |
//! | 15 | flags: bit 0 word bigrams, bit 1 negation scope |
//! | 16 | weight of the character n-gram group, in hundredths |
//! | 17..20 | reserved, zero |
//! | 20..32 | per-class weight scale (`f32` × 3: negative, neutral, positive) |
//! | 32..44 | per-class bias (`f32` × 3) |
//! | 44.. | weights, `i8`, bucket-major: `w[bucket * 3 + class] * scale[class]` |
//! | last 8 | FNV-1a 64 checksum of all preceding bytes |

use std::borrow::Cow;
use std::sync::LazyLock;

use thiserror::Error;

use crate::domain::{Sentiment, SentimentLabel};

/// Index of the negative class in probabilities, weights and confusion matrices.
pub const NEGATIVE: usize = 0;
/// Index of the neutral class.
pub const NEUTRAL: usize = 1;
/// Index of the positive class.
pub const POSITIVE: usize = 2;
/// The classes in index order.
pub const CLASSES: [SentimentLabel; 3] = [
    SentimentLabel::Negative,
    SentimentLabel::Neutral,
    SentimentLabel::Positive,
];

/// First bytes of every model file.
pub const MAGIC: [u8; 8] = *b"HARKSDE1";
/// Layout version of the model file this code reads and writes.
pub const FORMAT_VERSION: u16 = 1;
/// Version of [`extract_features`]: a model trained with another extractor would load fine
/// and score garbage, so the version is stored in the file and checked.
pub const FEATURES_VERSION: u16 = 1;

const HEADER_LEN: usize = 44;
const CHECKSUM_LEN: usize = 8;
const FLAG_WORD_BIGRAMS: u8 = 1;
const FLAG_NEGATION: u8 = 2;
/// Hash sizes a model may use: below 2^10 everything collides, above 2^22 the file is large.
const BUCKET_BITS: std::ops::RangeInclusive<u8> = 10..=22;
const MAX_CHAR_NGRAM: u8 = 8;

/// The model shipped with the binary (trained by `shared/examples/train_german.rs`).
static EMBEDDED_MODEL_BYTES: &[u8] = include_bytes!("../de_model.bin");

static EMBEDDED: LazyLock<Result<GermanModel, ModelError>> = LazyLock::new(|| {
    let (config, scales, bias, weights) = GermanModel::parse(EMBEDDED_MODEL_BYTES, false)?;
    Ok(GermanModel {
        config,
        scales,
        bias,
        weights: Cow::Borrowed(&EMBEDDED_MODEL_BYTES[weights]),
    })
});

/// The embedded model, parsed and validated on first use. Its weights are read in place
/// from the binary, and its checksum is not recomputed here: the bytes are compiled in, so
/// they cannot change after the build, and a test checks the checksum of the file that is
/// embedded. Hashing 786 KB and copying it to the heap took about 1.1 ms of the
/// processor's cold start.
pub fn embedded() -> Result<&'static GermanModel, ModelError> {
    EMBEDDED.as_ref().map_err(Clone::clone)
}

/// Why model bytes were refused. Nothing is scored with a model that fails any check.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    #[error("model file is {len} bytes, too short for a header and checksum")]
    TooShort { len: usize },
    #[error("not a Hark German sentiment model (bad magic bytes)")]
    BadMagic,
    #[error("model file format version {found} is not supported (this build reads {supported})")]
    UnsupportedFormat { found: u16, supported: u16 },
    #[error(
        "model was trained with feature extractor version {found}, this build extracts version {supported}: retrain it"
    )]
    FeaturesVersion { found: u16, supported: u16 },
    #[error("invalid feature configuration in model: {reason}")]
    InvalidConfig { reason: &'static str },
    #[error("model file is {found} bytes, its header implies {expected}")]
    LengthMismatch { expected: usize, found: usize },
    #[error(
        "model checksum mismatch (stored {stored:#018x}, computed {computed:#018x}): the file is corrupt"
    )]
    ChecksumMismatch { stored: u64, computed: u64 },
    #[error(
        "model field `{field}` holds a number that is not finite and non-negative where required"
    )]
    InvalidNumber { field: &'static str },
    #[error("model weights have {found} values, the configuration needs {expected}")]
    WeightCount { expected: usize, found: usize },
}

/// How text becomes features; stored in the model so that training and scoring agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureConfig {
    /// 2^`bucket_bits` hash buckets.
    pub bucket_bits: u8,
    /// Shortest character n-gram (0 with `char_max` 0: no character n-grams).
    pub char_min: u8,
    /// Longest character n-gram.
    pub char_max: u8,
    /// Pairs of consecutive tokens as features.
    pub word_bigrams: bool,
    /// Words within three tokens after a negator ("nicht", "kein", ...) also count as negated.
    pub negation: bool,
    /// Weight of the character n-gram group relative to the word group, in hundredths.
    /// Each group is normalised on its own (see [`feature_values`]), so this sets how much
    /// the many character n-grams may outvote the few word features.
    pub char_weight: u8,
}

impl FeatureConfig {
    /// Number of hash buckets.
    pub fn buckets(&self) -> usize {
        1usize << self.bucket_bits
    }

    fn validate(&self) -> Result<(), ModelError> {
        if !BUCKET_BITS.contains(&self.bucket_bits) {
            return Err(ModelError::InvalidConfig {
                reason: "hash bits must be within 10..=22",
            });
        }
        let no_chars = self.char_min == 0 && self.char_max == 0;
        if !no_chars
            && (self.char_min == 0
                || self.char_min > self.char_max
                || self.char_max > MAX_CHAR_NGRAM)
        {
            return Err(ModelError::InvalidConfig {
                reason: "character n-gram sizes must satisfy 1 <= min <= max <= 8 (or both 0)",
            });
        }
        Ok(())
    }

    fn flags(&self) -> u8 {
        (if self.word_bigrams {
            FLAG_WORD_BIGRAMS
        } else {
            0
        }) | (if self.negation { FLAG_NEGATION } else { 0 })
    }
}

/// What [`GermanModel::parse`] reads from a model file: configuration, scales, bias and
/// the byte range of the weights.
type ParsedModel = (FeatureConfig, [f32; 3], [f32; 3], std::ops::Range<usize>);

/// A loaded German sentiment model.
#[derive(Debug, Clone, PartialEq)]
pub struct GermanModel {
    config: FeatureConfig,
    scales: [f32; 3],
    bias: [f32; 3],
    /// `buckets × 3` `i8` weights as their bytes, bucket-major, so one feature reads three
    /// adjacent bytes. Borrowed from the binary for the embedded model.
    weights: Cow<'static, [u8]>,
}

impl GermanModel {
    /// Quantise float weights (`buckets × 3`, bucket-major, as [`Self::weight_index`]) to
    /// `i8` with one scale per class, the form the file stores.
    pub fn from_float(
        config: FeatureConfig,
        weights: &[f32],
        bias: [f32; 3],
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let expected = config.buckets() * 3;
        if weights.len() != expected {
            return Err(ModelError::WeightCount {
                expected,
                found: weights.len(),
            });
        }
        if weights.iter().any(|w| !w.is_finite()) {
            return Err(ModelError::InvalidNumber { field: "weights" });
        }
        if bias.iter().any(|b| !b.is_finite()) {
            return Err(ModelError::InvalidNumber { field: "bias" });
        }
        let mut scales = [0f32; 3];
        for (class, scale) in scales.iter_mut().enumerate() {
            let max = weights
                .iter()
                .skip(class)
                .step_by(3)
                .fold(0f32, |m, w| m.max(w.abs()));
            *scale = max / 127.0;
        }
        let quantised = weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let scale = scales[i % 3];
                if scale == 0.0 {
                    0
                } else {
                    // Clamped to ±127, so the cast cannot wrap.
                    (w / scale).round().clamp(-127.0, 127.0) as i8
                }
            })
            .map(|w| w.to_le_bytes()[0])
            .collect::<Vec<u8>>();
        Ok(Self {
            config,
            scales,
            bias,
            weights: Cow::Owned(quantised),
        })
    }

    /// Parse and validate a model file (see the module docs for the layout), checksum
    /// included.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let (config, scales, bias, weights) = Self::parse(bytes, true)?;
        Ok(Self {
            config,
            scales,
            bias,
            weights: Cow::Owned(bytes[weights].to_vec()),
        })
    }

    /// The checks of [`Self::from_bytes`] (the checksum only when asked): the configuration,
    /// scales, bias and where the weights are in `bytes`.
    fn parse(bytes: &[u8], verify_checksum: bool) -> Result<ParsedModel, ModelError> {
        if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
            return Err(ModelError::TooShort { len: bytes.len() });
        }
        if bytes[..8] != MAGIC {
            return Err(ModelError::BadMagic);
        }
        let format = u16::from_le_bytes([bytes[8], bytes[9]]);
        if format != FORMAT_VERSION {
            return Err(ModelError::UnsupportedFormat {
                found: format,
                supported: FORMAT_VERSION,
            });
        }
        let features = u16::from_le_bytes([bytes[10], bytes[11]]);
        if features != FEATURES_VERSION {
            return Err(ModelError::FeaturesVersion {
                found: features,
                supported: FEATURES_VERSION,
            });
        }
        let flags = bytes[15];
        if flags & !(FLAG_WORD_BIGRAMS | FLAG_NEGATION) != 0 {
            return Err(ModelError::InvalidConfig {
                reason: "unknown flag bits",
            });
        }
        if bytes[17..20] != [0, 0, 0] {
            return Err(ModelError::InvalidConfig {
                reason: "reserved header bytes are not zero",
            });
        }
        let config = FeatureConfig {
            bucket_bits: bytes[12],
            char_min: bytes[13],
            char_max: bytes[14],
            word_bigrams: flags & FLAG_WORD_BIGRAMS != 0,
            negation: flags & FLAG_NEGATION != 0,
            char_weight: bytes[16],
        };
        config.validate()?;
        let expected = HEADER_LEN + config.buckets() * 3 + CHECKSUM_LEN;
        if bytes.len() != expected {
            return Err(ModelError::LengthMismatch {
                expected,
                found: bytes.len(),
            });
        }
        let (body, tail) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        let stored = u64::from_le_bytes(read_array(tail, 0));
        if verify_checksum {
            let computed = fnv1a(FNV_OFFSET, body);
            if stored != computed {
                return Err(ModelError::ChecksumMismatch { stored, computed });
            }
        }
        let read_f32s = |offset: usize| -> [f32; 3] {
            [0, 1, 2].map(|i| f32::from_le_bytes(read_array(bytes, offset + 4 * i)))
        };
        let scales = read_f32s(20);
        if scales.iter().any(|s| !s.is_finite() || *s < 0.0) {
            return Err(ModelError::InvalidNumber { field: "scales" });
        }
        let bias = read_f32s(32);
        if bias.iter().any(|b| !b.is_finite()) {
            return Err(ModelError::InvalidNumber { field: "bias" });
        }
        Ok((config, scales, bias, HEADER_LEN..body.len()))
    }

    /// Serialise to the model file format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.weights.len() + CHECKSUM_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&FEATURES_VERSION.to_le_bytes());
        out.extend_from_slice(&[
            self.config.bucket_bits,
            self.config.char_min,
            self.config.char_max,
            self.config.flags(),
            self.config.char_weight,
            0,
            0,
            0,
        ]);
        for v in self.scales.iter().chain(self.bias.iter()) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.weights);
        let checksum = fnv1a(FNV_OFFSET, &out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    /// The feature configuration the model was trained with.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Where the weight of `class` for hash `bucket` sits in a weight vector.
    pub fn weight_index(bucket: u32, class: usize) -> usize {
        bucket as usize * 3 + class
    }

    /// Class probabilities `[negative, neutral, positive]` (softmax; they sum to 1).
    pub fn probabilities(&self, text: &str) -> [f64; 3] {
        let mut features = Vec::new();
        let words = extract_features(text, &self.config, &mut features);
        let (word_sums, char_sums) = (self.sums(&features[..words]), self.sums(&features[words..]));
        let (word_value, char_value) = feature_values(&self.config, words, features.len() - words);
        let logits: [f64; 3] = [0, 1, 2].map(|c| {
            let weighted = word_sums[c] as f64 * f64::from(word_value)
                + char_sums[c] as f64 * f64::from(char_value);
            f64::from(self.bias[c]) + f64::from(self.scales[c]) * weighted
        });
        softmax(logits)
    }

    /// Per-class sums of the quantised weights of `features`.
    fn sums(&self, features: &[u32]) -> [i64; 3] {
        let mut sums = [0i64; 3];
        for &bucket in features {
            let at = Self::weight_index(bucket, 0);
            // `bucket` < 2^bucket_bits by construction, so the row is in bounds; `get`
            // keeps even a broken invariant from panicking.
            if let Some(row) = self.weights.get(at..at + 3) {
                for (sum, w) in sums.iter_mut().zip(row) {
                    *sum += i64::from(i8::from_le_bytes([*w]));
                }
            }
        }
        sums
    }

    /// Score a German text: the most probable class, the probabilities as `neg`/`neu`/`pos`
    /// (3 decimals, summing to exactly 1.000), and `compound = P(pos) − P(neg)` (4 decimals).
    pub fn score(&self, text: &str) -> Sentiment {
        sentiment_from_probabilities(self.probabilities(text))
    }

    /// The most probable class (the label of [`Self::score`]).
    pub fn predict(&self, text: &str) -> usize {
        argmax(&self.probabilities(text))
    }
}

/// Map class probabilities `[neg, neu, pos]` to the domain type (see [`GermanModel::score`]).
pub fn sentiment_from_probabilities(p: [f64; 3]) -> Sentiment {
    let [neg, neu, pos] = thousandths(p);
    // `+ 0.0` turns a rounded -0.0 into 0.0 so that JSON never shows "-0.0".
    let compound = ((p[POSITIVE] - p[NEGATIVE]) * 10_000.0).round() / 10_000.0 + 0.0;
    Sentiment {
        label: CLASSES[argmax(&p)],
        compound,
        pos: f64::from(pos) / 1000.0,
        neu: f64::from(neu) / 1000.0,
        neg: f64::from(neg) / 1000.0,
    }
}

/// Index of the largest probability; ties go to neutral, then negative.
pub fn argmax(p: &[f64; 3]) -> usize {
    let mut best = NEUTRAL;
    for c in [NEGATIVE, POSITIVE] {
        if p[c] > p[best] {
            best = c;
        }
    }
    best
}

/// Round probabilities to thousandths that add up to exactly 1000 (largest remainder), so
/// that `pos + neu + neg` is 1.000 as the domain type promises.
fn thousandths(p: [f64; 3]) -> [u16; 3] {
    let scaled = p.map(|x| x.clamp(0.0, 1.0) * 1000.0);
    // In [0, 1000], so the casts are exact.
    let mut units = scaled.map(|x| x.floor() as u16);
    let mut missing = 1000u16.saturating_sub(units.iter().sum());
    let mut order = [0usize, 1, 2];
    order.sort_by(|&a, &b| {
        let (fa, fb) = (scaled[a] - scaled[a].floor(), scaled[b] - scaled[b].floor());
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in order.iter().cycle().take(3) {
        if missing == 0 {
            break;
        }
        units[i] += 1;
        missing -= 1;
    }
    units
}

fn softmax(logits: [f64; 3]) -> [f64; 3] {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp = logits.map(|l| (l - max).exp());
    let total: f64 = exp.iter().sum();
    exp.map(|e| e / total)
}

/// The value of each word-level and each character n-gram feature of a text with `words`
/// and `chars` of them: 1/√words and (char_weight/100)/√chars, so that long and short texts
/// produce logits of the same magnitude and the two groups keep a fixed balance. The trainer
/// uses the same values.
pub fn feature_values(config: &FeatureConfig, words: usize, chars: usize) -> (f32, f32) {
    let norm = |count: usize| {
        if count == 0 {
            0.0
        } else {
            1.0 / (count as f32).sqrt()
        }
    };
    (
        norm(words),
        norm(chars) * f32::from(config.char_weight) / 100.0,
    )
}

// ---------------------------------------------------------------------------------------
// Features
// ---------------------------------------------------------------------------------------

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64: stable across platforms and releases, unlike `std`'s `DefaultHasher`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// splitmix64's finaliser: spreads FNV's weak high bits before the bucket is taken from them.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn read_array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

/// Feature namespaces, so that the word "gut" and the character n-gram "gut" differ.
const NS_WORD: u8 = 1;
const NS_BIGRAM: u8 = 2;
const NS_CHARS: u8 = 3;
const NS_NEGATED: u8 = 4;

/// How far a negator reaches ("nicht wirklich gut" negates both words).
const NEGATION_REACH: usize = 3;
const NEGATORS: [&str; 11] = [
    "nicht", "kein", "keine", "keinen", "keinem", "keiner", "keines", "nie", "niemals", "nichts",
    "ohne",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Letters and digits (digits folded to `0`).
    Word,
    /// A run of ASCII punctuation: `!!`, `:-)`, `?!`.
    Punct,
    /// One emoji or other symbol.
    Symbol,
    /// `<url>` or `<user>`.
    Placeholder,
}

/// The normalised tokens of a text, kept in one buffer.
#[derive(Default)]
struct Tokens {
    text: String,
    spans: Vec<(usize, usize, Kind)>,
}

impl Tokens {
    fn push_placeholder(&mut self, placeholder: &str) {
        let start = self.text.len();
        self.text.push_str(placeholder);
        self.spans.push((start, self.text.len(), Kind::Placeholder));
    }

    fn iter(&self) -> impl Iterator<Item = (&str, Kind)> {
        self.spans
            .iter()
            .map(|&(start, end, kind)| (&self.text[start..end], kind))
    }
}

fn char_kind(c: char) -> Option<Kind> {
    if c.is_alphanumeric() {
        Some(Kind::Word)
    } else if matches!(
        c,
        '\u{FE0E}' | '\u{FE0F}' | '\u{200D}' | '\u{1F3FB}'..='\u{1F3FF}'
    ) {
        // Variation selectors, zero-width joiners and skin tones: "👍🏽" is "👍".
        None
    } else if c.is_ascii() {
        Some(Kind::Punct)
    } else {
        Some(Kind::Symbol)
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Undo the HTML escaping some sources leave in ("&lt;3" is the heart "<3"), then turn the
/// hearts "<3" and "</3" into the emoji they stand for: the tokenizer would otherwise split
/// them into punctuation and a number.
fn normalise_text(text: &str) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(text);
    if text.contains('&') {
        text = Cow::Owned(
            text.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&"),
        );
    }
    if text.contains('<') {
        text = Cow::Owned(text.replace("</3", "💔").replace("<3", "❤"));
    }
    text
}

fn tokenize(text: &str) -> Tokens {
    let text = normalise_text(text);
    let mut tokens = Tokens::default();
    for raw in text.split_whitespace() {
        if ["http://", "https://", "www."]
            .iter()
            .any(|p| starts_with_ignore_case(raw, p))
        {
            tokens.push_placeholder("<url>");
            continue;
        }
        let mut chars = raw.chars();
        if chars.next() == Some('@')
            && chars
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            tokens.push_placeholder("<user>");
            continue;
        }
        let mut current: Option<(usize, Kind)> = None;
        let mut last = '\0';
        let mut run = 0usize;
        for c in raw.chars() {
            let Some(kind) = char_kind(c) else { continue };
            let continues = matches!(current, Some((_, k)) if k == kind && kind != Kind::Symbol);
            if !continues {
                if let Some((start, k)) = current.take() {
                    tokens.spans.push((start, tokens.text.len(), k));
                }
                current = Some((tokens.text.len(), kind));
                last = '\0';
                run = 0;
            }
            let folded = if c.is_ascii_digit() { '0' } else { c };
            for lower in folded.to_lowercase() {
                // Squeeze runs: "suuuuper" and "suuper", "!!!!!" and "!!" are one feature
                // (numbers keep their length: "2013" is "0000", not "00").
                if lower == last && lower != '0' {
                    run += 1;
                    if run > 2 {
                        continue;
                    }
                } else {
                    last = lower;
                    run = 1;
                }
                tokens.text.push(lower);
            }
        }
        if let Some((start, k)) = current {
            tokens.spans.push((start, tokens.text.len(), k));
        }
    }
    tokens
}

fn bucket(hash: u64, bits: u8) -> u32 {
    // A model's `bits` is validated to 10..=22; the clamp only keeps a hand-built config from
    // overflowing the shift. At most 32 bits remain, so the cast is lossless.
    (mix(hash) >> (64 - u32::from(bits.clamp(1, 32)))) as u32
}

fn hash_in(namespace: u8, bytes: &[u8]) -> u64 {
    fnv1a(fnv1a(FNV_OFFSET, &[namespace]), bytes)
}

/// Append the hashed features of `text` to `out`: first the word-level ones (tokens, bigrams,
/// negated words), then the character n-grams; returns how many word-level ones there are.
/// One bucket per occurrence, in text order, so the result is deterministic.
pub fn extract_features(text: &str, config: &FeatureConfig, out: &mut Vec<u32>) -> usize {
    let bits = config.bucket_bits;
    let tokens = tokenize(text);
    let start = out.len();
    let mut char_grams: Vec<u32> = Vec::new();
    let mut previous: &str = "<s>";
    let mut negated_left = 0usize;
    let mut padded = String::new();
    let mut offsets: Vec<usize> = Vec::new();
    for (token, kind) in tokens.iter() {
        out.push(bucket(hash_in(NS_WORD, token.as_bytes()), bits));
        if config.word_bigrams {
            // 0xFF never occurs in UTF-8, so it separates the two tokens unambiguously.
            let pair = fnv1a(
                fnv1a(hash_in(NS_BIGRAM, previous.as_bytes()), &[0xFF]),
                token.as_bytes(),
            );
            out.push(bucket(pair, bits));
        }
        previous = token;
        if kind == Kind::Word && config.char_max > 0 {
            padded.clear();
            padded.push('<');
            padded.push_str(token);
            padded.push('>');
            offsets.clear();
            offsets.extend(padded.char_indices().map(|(i, _)| i));
            offsets.push(padded.len());
            let chars = offsets.len() - 1;
            for n in usize::from(config.char_min)..=usize::from(config.char_max) {
                for start in 0..(chars + 1).saturating_sub(n) {
                    let gram = &padded.as_bytes()[offsets[start]..offsets[start + n]];
                    char_grams.push(bucket(hash_in(NS_CHARS, gram), bits));
                }
            }
        }
        if config.negation {
            match kind {
                Kind::Word if negated_left > 0 => {
                    out.push(bucket(hash_in(NS_NEGATED, token.as_bytes()), bits));
                    negated_left -= 1;
                }
                Kind::Punct | Kind::Symbol => negated_left = 0,
                _ => {}
            }
            if kind == Kind::Word && NEGATORS.contains(&token) {
                negated_left = NEGATION_REACH;
            }
        }
    }
    if config.word_bigrams && !tokens.spans.is_empty() {
        let end = fnv1a(
            fnv1a(hash_in(NS_BIGRAM, previous.as_bytes()), &[0xFF]),
            b"</s>",
        );
        out.push(bucket(end, bits));
    }
    let words = out.len() - start;
    out.extend_from_slice(&char_grams);
    words
}

// ---------------------------------------------------------------------------------------
// Corpus, splits and metric (shared by the trainer and the model test)
// ---------------------------------------------------------------------------------------

/// A label of `de/train.tsv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorpusLabel {
    Negative,
    Neutral,
    Positive,
    /// Both positive and negative. Not one of the model's classes: the trainer drops these
    /// rows (488 of 14,601) and the 3-class metric leaves them out.
    Mixed,
}

impl CorpusLabel {
    /// The class index, or `None` for [`CorpusLabel::Mixed`].
    pub fn class(self) -> Option<usize> {
        match self {
            CorpusLabel::Negative => Some(NEGATIVE),
            CorpusLabel::Neutral => Some(NEUTRAL),
            CorpusLabel::Positive => Some(POSITIVE),
            CorpusLabel::Mixed => None,
        }
    }
}

/// One labelled row of `de/train.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledText {
    /// `potts` or `sb10k`.
    pub source: String,
    pub label: CorpusLabel,
    pub text: String,
}

/// A malformed training file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CorpusError {
    #[error("expected the header `source\\tlabel\\ttext`, found `{found}`")]
    MissingHeader { found: String },
    #[error("line {line}: expected 3 tab-separated fields, found {fields}")]
    FieldCount { line: usize, fields: usize },
    #[error("line {line}: unknown label `{label}` (expected positive, negative, neutral or mixed)")]
    UnknownLabel { line: usize, label: String },
}

/// Parse `de/train.tsv` (`source\tlabel\ttext` with that header).
pub fn parse_corpus(tsv: &str) -> Result<Vec<LabelledText>, CorpusError> {
    let mut lines = tsv.lines();
    let header = lines.next().unwrap_or_default();
    if header != "source\tlabel\ttext" {
        return Err(CorpusError::MissingHeader {
            found: header.chars().take(60).collect(),
        });
    }
    lines
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            let number = i + 2;
            let fields: Vec<&str> = line.split('\t').collect();
            let [source, label, text] = fields[..] else {
                return Err(CorpusError::FieldCount {
                    line: number,
                    fields: fields.len(),
                });
            };
            let label = match label {
                "positive" => CorpusLabel::Positive,
                "negative" => CorpusLabel::Negative,
                "neutral" => CorpusLabel::Neutral,
                "mixed" => CorpusLabel::Mixed,
                other => {
                    return Err(CorpusError::UnknownLabel {
                        line: number,
                        label: other.to_owned(),
                    });
                }
            };
            Ok(LabelledText {
                source: source.to_owned(),
                label,
                text: text.to_owned(),
            })
        })
        .collect()
}

/// The fixed split of a row, decided by its text alone so that duplicates never straddle
/// two splits: FNV-1a 64 of the text's UTF-8 bytes, modulo 10 — 0 is validation (about 10 %,
/// only ever reported, never used for choosing settings), the rest is for training (the
/// trainer tunes by cross-validation inside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
}

impl Split {
    /// The split `text` belongs to.
    pub fn of(text: &str) -> Split {
        if text_hash(text).is_multiple_of(10) {
            Split::Validation
        } else {
            Split::Train
        }
    }
}

/// The stable hash behind [`Split::of`] (FNV-1a 64 of the UTF-8 bytes); the trainer derives
/// its cross-validation folds from it too.
pub fn text_hash(text: &str) -> u64 {
    fnv1a(FNV_OFFSET, text.as_bytes())
}

/// Gold × predicted counts over the three classes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confusion {
    counts: [[u64; 3]; 3],
}

impl Confusion {
    /// Count one prediction (class indices).
    pub fn add(&mut self, gold: usize, predicted: usize) {
        self.counts[gold][predicted] += 1;
    }

    /// Number of predictions counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Share of correct predictions.
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..3).map(|c| self.counts[c][c]).sum();
        ratio(correct, self.total())
    }

    /// F1 of one class (0 when it was never predicted nor present).
    pub fn f1(&self, class: usize) -> f64 {
        let tp = self.counts[class][class];
        let predicted: u64 = (0..3).map(|g| self.counts[g][class]).sum();
        let gold: u64 = self.counts[class].iter().sum();
        let precision = ratio(tp, predicted);
        let recall = ratio(tp, gold);
        if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        }
    }

    /// Unweighted mean of the three classes' F1.
    pub fn macro_f1(&self) -> f64 {
        (0..3).map(|c| self.f1(c)).sum::<f64>() / 3.0
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FeatureConfig {
        FeatureConfig {
            bucket_bits: 12,
            char_min: 2,
            char_max: 4,
            word_bigrams: true,
            negation: true,
            char_weight: 50,
        }
    }

    fn tokens(text: &str) -> Vec<(String, Kind)> {
        tokenize(text)
            .iter()
            .map(|(t, k)| (t.to_owned(), k))
            .collect()
    }

    fn small_model() -> GermanModel {
        let config = config();
        let weights: Vec<f32> = (0..config.buckets() * 3)
            .map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0)
            .collect();
        GermanModel::from_float(config, &weights, [0.1, 0.5, -0.2]).unwrap()
    }

    #[test]
    fn given_a_tweet_then_tokens_are_lowercased_squeezed_and_placeholders_replace_urls_and_users() {
        let got = tokens("@Hark_de Sooooo GUT!!!!! :-) https://t.co/x 👍🏽 Grüße 2013 &lt;3");
        let want = [
            ("<user>", Kind::Placeholder),
            ("soo", Kind::Word),
            ("gut", Kind::Word),
            ("!!", Kind::Punct),
            (":-)", Kind::Punct),
            ("<url>", Kind::Placeholder),
            ("👍", Kind::Symbol),
            ("grüße", Kind::Word),
            ("0000", Kind::Word),
            ("❤", Kind::Symbol),
        ];
        let want: Vec<(String, Kind)> = want.iter().map(|(t, k)| (t.to_string(), *k)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn given_text_glued_to_emoticons_and_emoji_then_they_are_split_apart() {
        let got: Vec<String> = tokens("super:)😀😀#toll<3 </3")
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(got, ["super", ":)", "😀", "😀", "#", "toll", "❤", "💔"]);
    }

    #[test]
    fn given_the_same_text_then_features_are_identical_and_within_the_buckets() {
        let config = config();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        extract_features("Das ist nicht gut, aber okay 😀", &config, &mut a);
        extract_features("Das ist nicht gut, aber okay 😀", &config, &mut b);
        assert_eq!(a, b);
        assert!(!a.is_empty());
        assert!(a.iter().all(|&f| (f as usize) < config.buckets()));
    }

    #[test]
    fn given_negation_enabled_then_words_after_a_negator_add_features_until_punctuation() {
        let with = config();
        let without = FeatureConfig {
            negation: false,
            ..with
        };
        let count = |config: &FeatureConfig, text: &str| {
            let mut out = Vec::new();
            extract_features(text, config, &mut out);
            out.len()
        };
        // "gut" and "finde" follow "nicht": two extra features; "super" follows the comma.
        let text = "nicht gut finde ich, super";
        assert_eq!(count(&with, text), count(&without, text) + 3);
    }

    #[test]
    fn given_empty_text_then_there_are_no_features_and_the_bias_decides() {
        let mut out = Vec::new();
        extract_features("   ", &config(), &mut out);
        assert!(out.is_empty());
        let p = small_model().probabilities("");
        // The bias is stored as f32.
        assert_eq!(p, softmax([0.1f32, 0.5, -0.2].map(f64::from)));
    }

    #[test]
    fn given_probabilities_then_the_sentiment_rounds_them_to_thousandths_summing_to_one() {
        let s = sentiment_from_probabilities([0.3334, 0.3333, 0.3333]);
        assert_eq!((s.neg, s.neu, s.pos), (0.334, 0.333, 0.333));
        assert_eq!(s.compound, -0.0001);
        assert_eq!(s.label, SentimentLabel::Negative);

        let s = sentiment_from_probabilities([0.0005, 0.0015, 0.998]);
        let total: u32 = [s.neg, s.neu, s.pos]
            .iter()
            .map(|x| (x * 1000.0).round() as u32)
            .sum();
        assert_eq!(total, 1000, "{s:?}");
        assert_eq!(s.label, SentimentLabel::Positive);
        assert_eq!(s.compound, 0.9975);
    }

    #[test]
    fn given_equal_probabilities_then_the_label_is_neutral_and_compound_is_positive_zero() {
        let third = 1.0 / 3.0;
        let s = sentiment_from_probabilities([third, third, third]);
        assert_eq!(s.label, SentimentLabel::Neutral);
        assert!(s.compound == 0.0 && s.compound.is_sign_positive());
    }

    #[test]
    fn given_a_model_when_written_and_read_back_then_it_is_identical() {
        let model = small_model();
        let bytes = model.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 3 * 4096 + CHECKSUM_LEN);
        assert_eq!(GermanModel::from_bytes(&bytes), Ok(model.clone()));
        let text = "Ich freue mich so sehr über das Paket :)";
        assert_eq!(
            GermanModel::from_bytes(&bytes).unwrap().score(text),
            model.score(text)
        );
    }

    #[test]
    fn given_float_weights_then_quantisation_keeps_them_within_half_a_step() {
        let config = config();
        let weights: Vec<f32> = (0..config.buckets() * 3)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let model = GermanModel::from_float(config, &weights, [0.0; 3]).unwrap();
        for (i, w) in weights.iter().enumerate() {
            let back = f32::from(i8::from_le_bytes([model.weights[i]])) * model.scales[i % 3];
            assert!((back - w).abs() <= model.scales[i % 3] / 2.0 + 1e-6, "{i}");
        }
    }

    #[test]
    fn given_bad_weights_then_building_the_model_is_refused() {
        let config = config();
        assert_eq!(
            GermanModel::from_float(config, &[0.0; 5], [0.0; 3]),
            Err(ModelError::WeightCount {
                expected: 3 * 4096,
                found: 5
            })
        );
        let mut weights = vec![0.0; 3 * 4096];
        weights[7] = f32::NAN;
        assert_eq!(
            GermanModel::from_float(config, &weights, [0.0; 3]),
            Err(ModelError::InvalidNumber { field: "weights" })
        );
        let bad = FeatureConfig {
            bucket_bits: 30,
            ..config
        };
        assert!(matches!(
            GermanModel::from_float(bad, &[], [0.0; 3]),
            Err(ModelError::InvalidConfig { .. })
        ));
    }

    /// Rewrite the checksum after tampering, to reach the checks behind it.
    fn reseal(bytes: &mut [u8]) {
        let body_len = bytes.len() - CHECKSUM_LEN;
        let sum = fnv1a(FNV_OFFSET, &bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&sum.to_le_bytes());
    }

    #[test]
    fn given_corrupt_model_bytes_then_each_defect_is_a_typed_error() {
        let good = small_model().to_bytes();

        assert_eq!(
            GermanModel::from_bytes(&good[..20]),
            Err(ModelError::TooShort { len: 20 })
        );
        assert_eq!(
            GermanModel::from_bytes(&[]),
            Err(ModelError::TooShort { len: 0 })
        );

        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(GermanModel::from_bytes(&bad), Err(ModelError::BadMagic));

        let mut bad = good.clone();
        bad[8] = 9;
        assert_eq!(
            GermanModel::from_bytes(&bad),
            Err(ModelError::UnsupportedFormat {
                found: 9,
                supported: FORMAT_VERSION
            })
        );

        let mut bad = good.clone();
        bad[10] = 42;
        assert_eq!(
            GermanModel::from_bytes(&bad),
            Err(ModelError::FeaturesVersion {
                found: 42,
                supported: FEATURES_VERSION
            })
        );

        let mut bad = good.clone();
        bad[15] = 0x80;
        assert!(matches!(
            GermanModel::from_bytes(&bad),
            Err(ModelError::InvalidConfig { .. })
        ));

        let mut bad = good.clone();
        bad[18] = 1;
        reseal(&mut bad);
        assert_eq!(
            GermanModel::from_bytes(&bad),
            Err(ModelError::InvalidConfig {
                reason: "reserved header bytes are not zero"
            })
        );

        let mut bad = good.clone();
        bad[13] = 5; // char_min > char_max
        assert!(matches!(
            GermanModel::from_bytes(&bad),
            Err(ModelError::InvalidConfig { .. })
        ));

        let truncated = &good[..good.len() - 1];
        assert_eq!(
            GermanModel::from_bytes(truncated),
            Err(ModelError::LengthMismatch {
                expected: good.len(),
                found: good.len() - 1
            })
        );

        let mut bad = good.clone();
        bad[HEADER_LEN + 100] ^= 0x01;
        assert!(matches!(
            GermanModel::from_bytes(&bad),
            Err(ModelError::ChecksumMismatch { .. })
        ));

        let mut bad = good.clone();
        bad[20..24].copy_from_slice(&f32::NAN.to_le_bytes());
        reseal(&mut bad);
        assert_eq!(
            GermanModel::from_bytes(&bad),
            Err(ModelError::InvalidNumber { field: "scales" })
        );

        let mut bad = good;
        bad[32..36].copy_from_slice(&f32::INFINITY.to_le_bytes());
        reseal(&mut bad);
        assert_eq!(
            GermanModel::from_bytes(&bad),
            Err(ModelError::InvalidNumber { field: "bias" })
        );
    }

    #[test]
    fn given_the_embedded_model_then_it_loads_and_round_trips_byte_for_byte() {
        let model = embedded().expect("the embedded German model must be valid");
        assert_eq!(model.to_bytes(), EMBEDDED_MODEL_BYTES);
        // The cold-start path skips the checksum; the checking path must accept the same
        // bytes and read the same model.
        assert_eq!(
            GermanModel::from_bytes(EMBEDDED_MODEL_BYTES).as_ref(),
            Ok(model)
        );
        assert!(
            matches!(model.weights, Cow::Borrowed(_)),
            "the embedded weights are read in place, not copied"
        );
        assert!(
            EMBEDDED_MODEL_BYTES.len() < 2 * 1024 * 1024,
            "the model must stay under 2 MB, it is {} bytes",
            EMBEDDED_MODEL_BYTES.len()
        );
    }

    /// The figure `train_german` printed for the shipped model (validation split, 1,393 texts).
    const REPORTED_VALIDATION_MACRO_F1: f64 = 0.6647;

    #[test]
    fn given_the_validation_split_then_the_embedded_model_keeps_its_reported_macro_f1() {
        let dir = std::env::var_os("HARK_SENTIMENT_DATA")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/sentiment").into()
            });
        let path = dir.join("de/train.tsv");
        let tsv = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the German training data {}: {e} (set HARK_SENTIMENT_DATA to the \
                 directory holding de/train.tsv)",
                path.display()
            )
        });
        let model = embedded().unwrap();
        let mut confusion = Confusion::default();
        for row in parse_corpus(&tsv).unwrap() {
            if let (Some(gold), Split::Validation) = (row.label.class(), Split::of(&row.text)) {
                confusion.add(gold, model.predict(&row.text));
            }
        }
        assert_eq!(confusion.total(), 1393, "the validation split changed");
        let f1 = confusion.macro_f1();
        assert!(
            f1 >= REPORTED_VALIDATION_MACRO_F1 - 0.01,
            "validation macro-F1 {f1:.4} fell below the reported {REPORTED_VALIDATION_MACRO_F1} - 0.01 \
             (negative {:.4}, neutral {:.4}, positive {:.4})",
            confusion.f1(NEGATIVE),
            confusion.f1(NEUTRAL),
            confusion.f1(POSITIVE)
        );
    }

    #[test]
    fn given_clear_german_texts_then_the_embedded_model_gets_the_polarity_right() {
        let model = embedded().unwrap();
        let positive = model.score("Ich liebe dieses Produkt, einfach großartig! 😍");
        assert_eq!(positive.label, SentimentLabel::Positive, "{positive:?}");
        assert!(positive.compound > 0.0);
        let negative = model.score("Das ist der schlimmste Service überhaupt, total enttäuscht 😡");
        assert_eq!(negative.label, SentimentLabel::Negative, "{negative:?}");
        assert!(negative.compound < 0.0);
    }

    #[test]
    fn given_a_corpus_without_header_or_with_bad_rows_then_the_error_names_the_line() {
        assert_eq!(
            parse_corpus("a\tb\tc\n"),
            Err(CorpusError::MissingHeader {
                found: "a\tb\tc".into()
            })
        );
        assert_eq!(
            parse_corpus("source\tlabel\ttext\npotts\tpositive\tgut\npotts\tpositive\n"),
            Err(CorpusError::FieldCount { line: 3, fields: 2 })
        );
        let err = parse_corpus("source\tlabel\ttext\nsb10k\tgreat\ttoll\n").unwrap_err();
        assert_eq!(
            err,
            CorpusError::UnknownLabel {
                line: 2,
                label: "great".into()
            }
        );
        let rows = parse_corpus("source\tlabel\ttext\nsb10k\tmixed\tjein\n").unwrap();
        assert_eq!(rows[0].label.class(), None);
    }

    #[test]
    fn given_a_confusion_matrix_then_f1_and_macro_f1_follow_their_definitions() {
        let mut m = Confusion::default();
        // negative: 2 right, 1 called neutral; neutral: 1 right; positive: 1 right, 1 negative.
        for (g, p) in [(0, 0), (0, 0), (0, 1), (1, 1), (2, 2), (2, 0)] {
            m.add(g, p);
        }
        assert_eq!(m.total(), 6);
        assert!((m.accuracy() - 4.0 / 6.0).abs() < 1e-12);
        // negative: P = 2/3, R = 2/3; neutral: P = 1/2, R = 1; positive: P = 1, R = 1/2.
        assert!((m.f1(NEGATIVE) - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f1(NEUTRAL) - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.f1(POSITIVE) - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.macro_f1() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn given_the_same_text_then_the_split_is_stable() {
        // Pinned: changing the hash would silently move rows between train and validation.
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        let text = "Heute ist ein schöner Tag";
        assert_eq!(Split::of(text), Split::of(text));
    }
}
