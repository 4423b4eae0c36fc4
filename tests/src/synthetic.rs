//! Production-shaped synthetic trajectories, for the benches that must run at START's size
//! (Hint-RFT: 50,000 problems × 16 samples = 800,000 rows of QwQ length) on a machine that
//! cannot generate them with a model.
//!
//! Each row is a pure function of (problem, sample, seed), so a bench of any size is the same
//! run after run and rows can be made in any order or in parallel. What is shaped like a real
//! run, since the readers' costs depend on it:
//!
//! - **Lengths.** Reasoning of 10,000 to 30,000 characters, log-normal around 17,000 (QwQ-32B's
//!   traces on AIME-style problems), split by 0 to 6 hinted code blocks; about four characters
//!   per token, as a BPE tokenizer gives on English and LaTeX.
//! - **Text entropy.** Words drawn from a Zipf law over a 4,096-word vocabulary (common words
//!   of mathematical reasoning first, then made-up ones), so zstd compresses the text about as
//!   much as it compresses real reasoning (3 to 4 times), not the hundredfold of a repeated
//!   filler; token ids follow the words, so they compress alike.
//! - **Verdicts.** A pass rate per problem (a quarter never solved, a fifth always, the rest
//!   in between), 6% of rows cut at the token limit, 0.5% ended by an infrastructure error,
//!   wrong rows spread over a few wrong answers (so the majority rule has work).
//! - **Duplicates.** 4% of rows are near copies of their problem's first sample (5% of words
//!   changed: a Jaccard similarity of about 0.6 on 5-word shingles, so the near-duplicate
//!   check compares them but its default threshold of 0.9 keeps them) and 1% exact copies of
//!   its reasoning (the exact-duplicate filter drops those whose answers match too).
//!
//! What it is not: model output. Nothing here tests a grader or a model; the rows exist to
//! measure what reading, reporting and selecting 800k of them costs.

use chrono::DateTime;
use start_schemas::problem::ProblemKind;
use start_schemas::trajectory::{
    FinishReason, GenerationParams, HintOrigin, HintTrigger, Mode, Segment, SegmentKind, ToolCall,
    Trajectory,
};

/// The shape of a synthetic run.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Problems.
    pub problems: u32,
    /// Samples per problem (16 in START's Hint-RFT).
    pub samples: u32,
    /// Problems per work unit, one shard each (the cluster's default is 8).
    pub unit_size: u32,
    /// Varies every row.
    pub seed: u64,
}

impl Shape {
    /// START's Hint-RFT stage: 50,000 problems × 16 samples in units of 8 problems.
    pub const RFT: Shape = Shape {
        problems: 50_000,
        samples: 16,
        unit_size: 8,
        seed: 2503,
    };

    /// A run of about `rows` rows in START's shape (16 samples, units of 8 problems).
    pub fn rft_rows(rows: u64) -> Self {
        Self {
            problems: rows.div_ceil(16).max(1) as u32,
            ..Self::RFT
        }
    }

    /// Rows in all.
    pub fn rows(&self) -> u64 {
        u64::from(self.problems) * u64::from(self.samples)
    }

    /// Units (shards) in all.
    pub fn units(&self) -> u32 {
        self.problems.div_ceil(self.unit_size.max(1))
    }

    /// The rows of unit `unit`: its problems' samples, problem by problem.
    pub fn unit(&self, unit: u32) -> impl Iterator<Item = Trajectory> + '_ {
        let lo = unit * self.unit_size;
        let hi = (lo + self.unit_size).min(self.problems);
        (lo..hi).flat_map(move |p| (0..self.samples).map(move |s| self.row(p, s)))
    }

    /// Sample `sample` of problem `problem`.
    pub fn row(&self, problem: u32, sample: u32) -> Trajectory {
        let pseed = mix(self.seed ^ u64::from(problem).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut rng = Rng(mix(pseed ^ (u64::from(sample) + 1)));
        // The problem's own draws: its pass rate and its answer.
        let mut prng = Rng(pseed);
        let pass_rate = match prng.below(20) {
            0..=4 => 0.0,
            5..=8 => 1.0,
            _ => prng.unit(),
        };
        let answer = prng.below(1000);
        // Where the text comes from: its own draw, or (for a duplicate) the first sample's.
        let copy = rng.below(100);
        let text_seed = if sample == 0 || copy < 5 {
            mix(pseed ^ 1)
        } else {
            rng.0
        };
        let edits = if sample > 0 && copy < 4 { 50 } else { 0 };
        let mut segments = body(text_seed, edits, rng.0);

        let finish = match rng.below(1000) {
            0..=4 => FinishReason::Error,
            5..=64 => FinishReason::MaxNewTokens,
            _ => FinishReason::Stop,
        };
        let correct = match finish {
            FinishReason::Error => None,
            FinishReason::Stop => Some(rng.unit() < pass_rate),
            _ => Some(false),
        };
        let final_answer = (finish == FinishReason::Stop).then(|| match correct {
            Some(true) => answer.to_string(),
            _ => (answer + 1 + rng.below(3)).to_string(),
        });
        if let Some(a) = &final_answer {
            let text = format!("\n\nSo the final answer is \\boxed{{{a}}}.");
            let tokens = tokens_of(&text, 7);
            segments.push(Segment::new(SegmentKind::Answer, text, tokens));
        }
        let mut tool_calls = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            if s.kind == SegmentKind::Code {
                let failed = rng.below(6) == 0;
                tool_calls.push(ToolCall {
                    segment: i as u32,
                    tool: "python".into(),
                    exit_code: Some(i32::from(failed)),
                    timed_out: false,
                    memory_exceeded: false,
                    truncated: false,
                    duration_ms: 40.0 + rng.unit() * 400.0,
                    error: None,
                });
            }
        }
        let full_text: String = segments.iter().map(|s| s.text.as_str()).collect();
        let completion_tokens = segments.iter().map(|s| s.tokens.len() as u32).sum();
        let question = format!(
            "Problem {problem}: find the number of ordered pairs of positive integers (a, b) \
             with a + b <= {} such that a divides b squared plus one. Put the final answer in \
             \\boxed{{}}.",
            100 + problem % 900
        );
        Trajectory {
            job_id: "job-synthetic-rft".into(),
            problem_id: format!("synthetic-{problem:06}"),
            sample_index: sample,
            source: "synthetic".into(),
            kind: ProblemKind::Math,
            mode: Mode::Rft,
            model_name: "START-0-synthetic".into(),
            model_sha256: "5a".repeat(32),
            backend: "openai".into(),
            model_identity: None,
            token_ids_source: "server".into(),
            params: GenerationParams {
                temperature: 0.6,
                top_k: 40,
                top_p: 0.95,
                min_p: 0.0,
                repeat_penalty: 1.0,
                max_new_tokens: 16_384,
                max_tool_calls: 6,
                seed: self.seed,
            },
            seed: mix(pseed ^ u64::from(sample)),
            prompt: format!(
                "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n<think>\n"
            ),
            prompt_token_ids: tokens_of(&question, 3),
            generation_prefix_tokens: 2,
            user_message: question,
            generation_prefix: "<think>\n".into(),
            trajectory_sha256: Trajectory::compute_sha256(&full_text),
            full_text,
            segments,
            tools: vec!["python".into()],
            figures: Vec::new(),
            tool_errors: tool_calls.iter().filter(|c| c.failed()).count() as u32,
            tool_calls,
            finish_reason: finish,
            finish_detail: None,
            end_of_turn: (finish == FinishReason::Stop).then(|| "<|im_end|>".into()),
            end_of_turn_token: (finish == FinishReason::Stop).then_some(151_645),
            tool_limit_reached: false,
            hint_settings: None,
            hint_library_sha256: "ab".repeat(32),
            sandbox: "docker:start-sandbox".into(),
            final_answer,
            correct,
            score: correct.map(|c| if c { 1.0 } else { 0.0 }),
            grading_detail: None,
            choice_permutation: None,
            prompt_tokens: 80,
            completion_tokens,
            wall_time_s: 60.0 + f64::from(completion_tokens) / 40.0,
            worker_id: format!("worker-{}", problem % 64),
            created_at: DateTime::from_timestamp_micros(
                1_795_000_000_000_000 + i64::from(problem) * 16_000 + i64::from(sample),
            )
            .expect("in range"),
        }
    }
}

/// The hint START inserts before a block.
const HINT: &str = "\n\nWait, maybe using Python here is a good idea.\n```python\n";

/// The segments before the answer: reasoning of a log-normal length cut by hinted code blocks,
/// each with its output. `edits` words of every 1,000 are changed after the draw (a near
/// copy); `edit_seed` chooses which.
fn body(text_seed: u64, edits: u64, edit_seed: u64) -> Vec<Segment> {
    let mut rng = Rng(text_seed);
    let mut edit = Rng(mix(edit_seed ^ 0x5eed));
    // Log-normal around 17,000 characters (sigma 0.3), within 10,000..30,000.
    let chars = (17_000.0 * (0.3 * rng.normal()).exp()).clamp(10_000.0, 30_000.0) as usize;
    let blocks = match rng.below(10) {
        0..=1 => 0,
        n => 1 + (n as usize % 6),
    };
    let per = chars.div_ceil(blocks + 1);
    let mut segments = Vec::with_capacity(blocks * 4 + 2);
    for b in 0..=blocks {
        let mut text = String::with_capacity(per + 64);
        let mut tokens = Vec::with_capacity(per / 4 + 16);
        let mut in_line = 0;
        while text.len() < per {
            let mut w = rng.zipf();
            if edits > 0 && edit.below(1000) < edits {
                w = edit.below(VOCAB as u64) as usize;
            }
            let word = word(w);
            text.push_str(&word);
            tokens.extend(word_tokens(w, word.len()));
            in_line += 1;
            if in_line > 12 && rng.below(8) == 0 {
                text.push_str(if rng.below(4) == 0 { "\n\n" } else { "\n" });
                in_line = 0;
            } else {
                text.push(' ');
            }
        }
        segments.push(Segment::new(SegmentKind::Reasoning, text, tokens));
        if b == blocks {
            break;
        }
        segments.push(Segment {
            hint: Some(HintOrigin {
                kind: "complex_calculation".into(),
                trigger: HintTrigger::Word,
                replaced: "Wait,".into(),
            }),
            ..Segment::new(SegmentKind::Hint, HINT, tokens_of(HINT, 5))
        });
        let n = 100 + rng.below(900);
        let code = format!(
            "from sympy import symbols, solve, Rational\ncount = 0\nfor a in range(1, {n}):\n    \
             for b in range(1, {n} - a + 1):\n        if (b * b + 1) % a == 0:\n            \
             count += 1\nprint(count)\n```\n"
        );
        let code_tokens = tokens_of(&code, 11);
        segments.push(Segment::new(SegmentKind::Code, code, code_tokens));
        let output = format!("```output\n{}\n```\n", rng.below(100_000));
        let output_tokens = tokens_of(&output, 13);
        segments.push(Segment::new(SegmentKind::Output, output, output_tokens));
    }
    segments
}

/// Vocabulary size.
const VOCAB: usize = 4096;

/// The words of reasoning that come first in the Zipf order.
const COMMON: &[&str] = &[
    "the",
    "so",
    "we",
    "is",
    "let",
    "me",
    "a",
    "of",
    "to",
    "and",
    "that",
    "=",
    "this",
    "wait",
    "then",
    "but",
    "check",
    "if",
    "for",
    "it",
    "be",
    "in",
    "number",
    "x",
    "n",
    "+",
    "can",
    "k",
    "which",
    "maybe",
    "think",
    "must",
    "case",
    "when",
    "not",
    "answer",
    "with",
    "are",
    "2",
    "1",
    "0",
    "3",
    "equation",
    "sum",
    "value",
    "terms",
    "hmm",
    "since",
    "alternatively",
    "compute",
    "divides",
    "pairs",
    "integer",
    "integers",
    "positive",
    "each",
    "there",
    "at",
    "least",
    "b",
    "again",
    "so,",
    "wait,",
    "perhaps",
    "now",
    "right",
    "because",
    "gives",
    "means",
    "mod",
    "\\frac{a}{b}",
    "$a^2",
    "+ 1$",
    "\\equiv",
    "p",
    "prime",
    "factor",
    "square",
    "root",
    "all",
    "total",
    "count",
    "possible",
    "values",
    "condition",
    "holds",
    "consider",
    "suppose",
];

/// Word `w` of the vocabulary: a common word, or a made-up one of 2 to 11 letters.
fn word(w: usize) -> String {
    if let Some(c) = COMMON.get(w) {
        return (*c).to_string();
    }
    let mut r = Rng(mix(w as u64 ^ 0xc0ffee));
    let len = 2 + r.below(10) as usize;
    (0..len)
        .map(|_| char::from(b'a' + r.below(26) as u8))
        .collect()
}

/// A word's token ids: about one per four characters, the ids following the word.
fn word_tokens(w: usize, len: usize) -> impl Iterator<Item = i32> {
    (0..len.div_ceil(4).max(1)).map(move |k| 1000 + (w as i32) * 3 + k as i32)
}

/// Token ids for fixed text (hints, code, outputs): one per four characters.
fn tokens_of(text: &str, salt: i32) -> Vec<i32> {
    (0..text.len().div_ceil(4) as i32)
        .map(|k| 20_000 + salt * 97 + k)
        .collect()
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small, fast, seeded generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// A word index under a Zipf law (exponent 1) over [`VOCAB`] words, by inverting the
    /// harmonic sum's approximation `H(k) ≈ ln k + γ`.
    fn zipf(&mut self) -> usize {
        const GAMMA: f64 = 0.577_215_664_9;
        let h = (VOCAB as f64).ln() + GAMMA;
        let k = (self.unit() * h - GAMMA).exp();
        (k as usize).min(VOCAB - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_pure_functions_of_their_coordinates_and_shaped_like_rft() {
        let shape = Shape::rft_rows(3_200);
        assert_eq!(shape.rows(), 3_200);
        assert_eq!(shape.units(), 25);
        let a = shape.row(7, 3);
        assert_eq!(a.trajectory_sha256, shape.row(7, 3).trajectory_sha256);
        assert_ne!(a.trajectory_sha256, shape.row(7, 4).trajectory_sha256);
        let rows: Vec<Trajectory> = (0..7).flat_map(|u| shape.unit(u)).take(800).collect();
        let lengths: Vec<usize> = rows
            .iter()
            .map(|t| {
                t.segments
                    .iter()
                    .filter(|s| s.kind == SegmentKind::Reasoning)
                    .map(|s| s.text.len())
                    .sum()
            })
            .collect();
        assert!(lengths.iter().all(|&n| (10_000..31_000).contains(&n)));
        let mean = lengths.iter().sum::<usize>() / lengths.len();
        assert!((15_000..20_000).contains(&mean), "mean {mean}");
        for t in &rows {
            let text: String = t.segments.iter().map(|s| s.text.as_str()).collect();
            assert_eq!(text, t.full_text);
            let chars_per_token = t.full_text.len() as f64 / f64::from(t.completion_tokens);
            assert!((3.0..5.5).contains(&chars_per_token), "{chars_per_token}");
        }
        let correct = rows.iter().filter(|t| t.correct == Some(true)).count();
        assert!((150..650).contains(&correct), "{correct} of 800 correct");
        // Exact copies of the first sample's reasoning: about 1% of the rows.
        let mut texts: Vec<&str> = rows.iter().map(|t| t.segments[0].text.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        let copies = rows.len() - texts.len();
        assert!((1..=30).contains(&copies), "{copies} exact copies of 800");
    }
}
