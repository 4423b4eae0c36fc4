//! Hint-RFT selection: which trajectories become SFT data.
//!
//! Works in two passes so that a dataset of any size fits: the first pass keeps only small
//! features per trajectory ([`Features`]: hashes, a MinHash signature, counts), the selection
//! runs on those, and the caller re-reads the shards to write the kept rows.

pub mod rules;

use rules::{Rule, Verdicts};
use sha2::{Digest, Sha256};
use start_schemas::trajectory::{FinishReason, Mode, Trajectory};
use std::collections::{BTreeMap, HashMap, HashSet};

/// MinHash permutations per signature; 64 gives a Jaccard estimate within about ±0.12.
const MINHASH: usize = 64;
/// Words per shingle for near-duplicate detection.
const SHINGLE: usize = 5;
/// Words per n-gram for the repetition ratio.
const REPEAT_NGRAM: usize = 4;

/// What is kept of a trajectory during selection.
#[derive(Clone, Debug)]
pub struct Features {
    /// Shard index and row within it, to find the row again.
    pub at: (usize, usize),
    /// Problem id.
    pub problem_id: String,
    /// Sample index.
    pub sample_index: u32,
    /// The verdict; `None` when ungraded.
    pub correct: Option<bool>,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Completion length.
    pub completion_tokens: u32,
    /// Code executions.
    pub tool_calls: u32,
    /// Failed code executions.
    pub tool_errors: u32,
    /// Whether it was generated with hints (the seed-data rule keeps only those).
    pub hint_infer: bool,
    /// sha256 of the normalised text (lower case, whitespace collapsed); of the empty text
    /// for a row that is not correct and finished (the text checks never see it).
    pub text_hash: [u8; 32],
    /// MinHash signature of the word shingles ([`minhash`]); empty for such a row.
    pub minhash: Box<[u32]>,
    /// Share of repeated word n-grams in [0, 1]; 0 for such a row.
    pub repeat_ratio: f32,
    /// Its verdict on every published quality rule ([`rules`]).
    pub verdicts: Verdicts,
    /// Hash of its final answer (case and whitespace ignored) on a finished row; 0 without
    /// one. The majority rule compares a problem's rows by it.
    pub answer_key: u64,
}

/// The key [`Features::answer_key`] holds for `answer`.
fn answer_key(answer: Option<&str>) -> u64 {
    let Some(answer) = answer.map(str::trim).filter(|a| !a.is_empty()) else {
        return 0;
    };
    let h = answer
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .fold(FNV_OFFSET, |h, c| {
            let mut buf = [0; 4];
            c.encode_utf8(&mut buf).bytes().fold(h, fnv_step)
        });
    h.max(1)
}

/// FNV-1a's offset basis: fast, stable across runs and platforms.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
}

/// splitmix64's finaliser: every input bit moves every output bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A word's hash, the unit the n-gram hashes are made of: each word is hashed once, however
/// many n-grams it is in.
fn word_hash(word: &str) -> u64 {
    mix64(word.bytes().fold(FNV_OFFSET, fnv_step))
}

/// The hash of each run of `n` consecutive words (of one run of all of them when there are
/// fewer), from the words' hashes: order-sensitive, mixed so that every bit depends on every
/// word.
fn ngram_hashes(words: &[u64], n: usize) -> impl Iterator<Item = u64> + '_ {
    let runs: Box<dyn Iterator<Item = &[u64]>> = if words.len() >= n {
        Box::new(words.windows(n))
    } else {
        Box::new(std::iter::once(words))
    };
    runs.map(|run| {
        mix64(run.iter().fold(FNV_OFFSET, |h, &w| {
            h.rotate_left(27).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ w
        }))
    })
}

/// A hasher for keys that are already well-mixed 64-bit hashes: passes them through, where
/// the standard SipHash would hash them again (most of the repetition check's time).
#[derive(Default)]
struct Premixed(u64);

impl std::hash::Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = bytes.iter().fold(self.0, |h, &b| fnv_step(h, b));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Share of word n-grams that repeat an earlier one: near 0 for prose, near 1 for a loop.
pub fn repeat_ratio(words: &[&str]) -> f32 {
    let hashes: Vec<u64> = words.iter().map(|w| word_hash(w)).collect();
    repeat_ratio_of(&hashes)
}

/// [`repeat_ratio`] from the words' hashes (n-grams compared by their 64-bit hashes).
fn repeat_ratio_of(words: &[u64]) -> f32 {
    if words.len() < REPEAT_NGRAM * 2 {
        return 0.0;
    }
    let total = words.len() - REPEAT_NGRAM + 1;
    let mut unique: HashSet<u64, std::hash::BuildHasherDefault<Premixed>> =
        HashSet::with_capacity_and_hasher(total, Default::default());
    unique.extend(ngram_hashes(words, REPEAT_NGRAM));
    1.0 - unique.len() as f32 / total as f32
}

/// MinHash signature of the word shingles of `words`: [`MINHASH`] 32-bit values.
pub fn minhash(words: &[&str]) -> Box<[u32]> {
    let hashes: Vec<u64> = words.iter().map(|w| word_hash(w)).collect();
    signature(&hashes)
}

/// One-permutation MinHash (Li, Owen and Zhang 2012) with optimal densification (Shrivastava
/// 2017): each shingle is hashed once, six bits of the hash choose one of [`MINHASH`] bins and
/// the bin keeps the least of the low 32 bits; a bin no shingle fell in takes the value of the
/// first filled bin a fixed probe sequence of its own reaches. Two signatures agree in a bin
/// with probability the sets' Jaccard similarity, as with [`MINHASH`] independent
/// permutations, at one hash per shingle where the permutations took [`MINHASH`] (a quarter of
/// a report's time on QwQ-length rows).
fn signature(words: &[u64]) -> Box<[u32]> {
    let mut bins = [u32::MAX; MINHASH];
    let mut filled = [false; MINHASH];
    if words.is_empty() {
        return bins.into();
    }
    for h in ngram_hashes(words, SHINGLE) {
        let bin = ((h >> 32) % MINHASH as u64) as usize;
        bins[bin] = bins[bin].min(h as u32);
        filled[bin] = true;
    }
    let original = bins;
    for (i, bin) in bins.iter_mut().enumerate() {
        if filled[i] {
            continue;
        }
        // At least one bin is filled; the probe sequence is the same for every signature, so
        // two sets with the same filled bins copy the same values.
        for attempt in 1u64.. {
            let j = (mix64((i as u64) << 32 | attempt) % MINHASH as u64) as usize;
            if filled[j] {
                *bin = original[j];
                break;
            }
        }
    }
    bins.into()
}

/// Estimated Jaccard similarity of two signatures.
pub fn similarity(a: &[u32], b: &[u32]) -> f32 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f32 / a.len().max(1) as f32
}

impl Features {
    /// Computes the features of one trajectory.
    pub fn of(t: &Trajectory, at: (usize, usize)) -> Self {
        // The first filters of [`select`] drop every row that is not correct and finished
        // (under every policy but `All`), before its text is looked at: such rows skip the text
        // features (hash, MinHash, repetition), most of the cost on long, mostly wrong
        // trajectories.
        Self::build(t, at, t.correct == Some(true))
    }

    /// The features for [`Select::All`]: the text features of every finished row, correct or
    /// not.
    pub fn of_any(t: &Trajectory, at: (usize, usize)) -> Self {
        Self::build(t, at, true)
    }

    fn build(t: &Trajectory, at: (usize, usize), graded_in: bool) -> Self {
        let text_checked = graded_in && t.finish_reason == FinishReason::Stop;
        let lower = if text_checked {
            t.full_text.to_lowercase()
        } else {
            String::new()
        };
        let words: Vec<&str> = lower.split_whitespace().collect();
        let normalised = words.join(" ");
        let hashes: Vec<u64> = words.iter().map(|w| word_hash(w)).collect();
        Self {
            at,
            problem_id: t.problem_id.clone(),
            sample_index: t.sample_index,
            correct: t.correct,
            finish_reason: t.finish_reason,
            completion_tokens: t.completion_tokens,
            tool_calls: t.tool_calls.len() as u32,
            tool_errors: t.tool_errors,
            hint_infer: t.mode == Mode::HintInfer,
            text_hash: Sha256::digest(normalised.as_bytes()).into(),
            minhash: if text_checked {
                signature(&hashes)
            } else {
                Box::default()
            },
            repeat_ratio: repeat_ratio_of(&hashes),
            // The rules run after the correctness and finish filters, so the rows those drop
            // skip them, as they skip the text features.
            verdicts: if text_checked {
                Verdicts::of(t)
            } else {
                Verdicts::default()
            },
            answer_key: if t.finish_reason == FinishReason::Stop {
                answer_key(t.final_answer.as_deref())
            } else {
                0
            },
        }
    }
}

/// Which trajectories to keep per problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// Every correct one that passes the filters.
    Correct,
    /// The best one per problem.
    BestPerProblem,
    /// The best k per problem.
    TopK(usize),
    /// Every trajectory, correct or not, that the filters other than correctness keep: for
    /// checks of the export's shape (a trainer's loader on a small model's run) and for sets
    /// that want failures too. Never an SFT set by itself.
    All,
    /// rStar2-Agent's Resample-on-Correct: of the correct ones, the k per problem with the
    /// lowest share of failed tool calls, then with no repeated answer tags (a lower sample
    /// index breaks ties, standing for its uniform draw).
    ResampleOnCorrect(usize),
}

/// Selection settings.
#[derive(Clone, Debug)]
pub struct Policy {
    /// What to keep.
    pub select: Select,
    /// Near duplicates: estimated Jaccard similarity at or above this within a problem.
    pub near_duplicate: f32,
    /// Repetitive: repeated 4-gram share above this.
    pub max_repeat_ratio: f32,
    /// Over-long: more completion tokens than this.
    pub max_completion_tokens: Option<u32>,
    /// START's seed-data rule (D_seed), when given: keep a problem's hint-infer trajectory only
    /// when it is correct, made at least one successful tool call, and the plain baseline on
    /// that problem was wrong.
    pub seed_data: Option<SeedData>,
    /// The published quality rules switched on ([`rules`]); none by default.
    pub rules: Vec<Rule>,
    /// The most the rows that ran code may be of the kept set, in (0, 1] (the 2026 recipe's cap
    /// that keeps text-only reasoning from degrading); `None`: no cap. Applied last, on what
    /// the rest kept: the rows over the cap are dropped spread over problems, a problem's
    /// best-ranked tool rows last ([`cap_tool_share`]).
    pub max_tool_share: Option<f64>,
}

/// What the seed-data rule knows of the plain baseline.
#[derive(Clone, Debug, Default)]
pub struct SeedData {
    /// Problems the baseline has trajectories for.
    pub baseline: HashSet<String>,
    /// Of those, the problems it solved.
    pub solved: HashSet<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            select: Select::Correct,
            near_duplicate: 0.9,
            max_repeat_ratio: 0.5,
            max_completion_tokens: None,
            seed_data: None,
            rules: Vec::new(),
            max_tool_share: None,
        }
    }
}

/// Why a trajectory was removed, in the order the filters run: the quality rules' reasons
/// ([`Rule::reason`]) come after the repetition check, in [`RULES`] order.
pub const REASONS: [&str; 24] = [
    "infrastructure error (finish_reason = error)",
    "not graded",
    "incorrect",
    "unfinished (cut by a limit)",
    "over-long",
    "repetitive loop",
    "void turn after a tool result (void-turn)",
    "no code (no-code)",
    "block left unclosed (unclosed-block)",
    "boxed answer before the first code (answer-before-code)",
    "no final answer (no-final-answer)",
    "failed code execution (code-error)",
    "code only verifies (verification-only)",
    "matplotlib call (matplotlib)",
    "several boxed answers (several-boxed)",
    "not the majority answer (majority)",
    "no novel significant block by the judge (judge)",
    "not hint-infer (seed-data rule)",
    "no successful tool call (seed-data rule)",
    "no plain baseline for the problem (seed-data rule)",
    "solved by plain greedy (seed-data rule)",
    "exact duplicate",
    "near duplicate",
    "tool-use share over the cap (--max-tool-share)",
];

/// The outcome of selection.
#[derive(Debug, Default)]
pub struct Selection {
    /// Kept trajectories' positions, in dataset order.
    pub kept: Vec<(usize, usize)>,
    /// Removed counts by reason (keys from [`REASONS`], plus "not selected").
    pub removed: BTreeMap<&'static str, u64>,
    /// Trajectories considered.
    pub total: u64,
    /// Of the kept rows, how many each quality rule that was not applied would drop (keys
    /// from [`Rule::reason`]): what switching it on would cost.
    pub would_drop: BTreeMap<&'static str, u64>,
    /// Of the kept rows, those that ran code (at least one tool call).
    pub kept_with_tools: u64,
}

/// Ranks candidates of one problem, best first: tool calls that all succeeded first, then
/// fewer tokens, then the lower sample index (a stable tie-break).
fn rank_key(f: &Features) -> (bool, bool, u32, u32) {
    let tools_clean = f.tool_calls > 0 && f.tool_errors == 0;
    (
        !tools_clean,
        f.tool_errors > 0,
        f.completion_tokens,
        f.sample_index,
    )
}

/// Resample-on-Correct's ranking: the lower share of failed tool calls (compared exactly, as
/// fractions), then no repeated answer tags, then the lower sample index.
fn resample_key(a: &Features, b: &Features) -> std::cmp::Ordering {
    let share = |f: &Features| (u64::from(f.tool_errors), u64::from(f.tool_calls.max(1)));
    let ((ea, ca), (eb, cb)) = (share(a), share(b));
    (ea * cb)
        .cmp(&(eb * ca))
        .then((a.verdicts.answer_tags > 1).cmp(&(b.verdicts.answer_tags > 1)))
        .then(a.sample_index.cmp(&b.sample_index))
}

fn bump(removed: &mut BTreeMap<&'static str, u64>, reason: &'static str) {
    *removed.entry(reason).or_default() += 1;
}

/// Marks [`Rule::Majority`] on every row: broken when its answer is not one of the most common
/// among its problem's finished rows with an answer (a row without one breaks it too).
fn mark_majority(features: &mut [Features]) {
    let mut counts: HashMap<&str, HashMap<u64, u32>> = HashMap::new();
    for f in features.iter().filter(|f| f.answer_key != 0) {
        *counts
            .entry(f.problem_id.as_str())
            .or_default()
            .entry(f.answer_key)
            .or_default() += 1;
    }
    let majority: HashMap<String, HashSet<u64>> = counts
        .into_iter()
        .map(|(problem, answers)| {
            let top = answers.values().copied().max().unwrap_or(0);
            let keys = answers
                .into_iter()
                .filter(|&(_, n)| n == top)
                .map(|(k, _)| k)
                .collect();
            (problem.to_string(), keys)
        })
        .collect();
    for f in features {
        let broken = majority
            .get(&f.problem_id)
            .is_none_or(|keys| !keys.contains(&f.answer_key));
        f.verdicts.mark(Rule::Majority, broken);
    }
}

/// Keeps as many of `kept`'s rows that ran code (a tool call) as a tool-use share of at most
/// `share` allows beside its text-only rows, all of which stay: `t / (t + n) <= share` for t
/// tool rows and n text-only ones. The rows dropped are spread over problems: every problem's
/// best tool row (in `kept`'s order, which is the selection's ranking within a problem) is
/// kept before any problem's second, and among rows of the same rank the row text's sha256
/// orders them, a draw that is the same on every run of the same dataset.
pub fn cap_tool_share(kept: Vec<Features>, share: f64) -> Vec<Features> {
    let text_only = kept.iter().filter(|f| f.tool_calls == 0).count();
    let tool_rows = kept.len() - text_only;
    let allowed = if share >= 1.0 {
        tool_rows
    } else {
        // The largest t with t / (t + n) <= share; the epsilon keeps an exact share (1 of 4 at
        // 25%) from rounding below itself.
        ((share * text_only as f64 / (1.0 - share)) + 1e-9).floor() as usize
    };
    if tool_rows <= allowed {
        return kept;
    }
    let mut rank: HashMap<&str, usize> = HashMap::new();
    let mut order: Vec<(usize, [u8; 32], usize)> = Vec::new();
    for (i, f) in kept.iter().enumerate().filter(|(_, f)| f.tool_calls > 0) {
        let r = rank.entry(f.problem_id.as_str()).or_default();
        order.push((*r, f.text_hash, i));
        *r += 1;
    }
    order.sort_unstable();
    let keep: HashSet<usize> = order.into_iter().take(allowed).map(|(_, _, i)| i).collect();
    kept.into_iter()
        .enumerate()
        .filter(|(i, f)| f.tool_calls == 0 || keep.contains(i))
        .map(|(_, f)| f)
        .collect()
}

/// Runs the filters and the selection.
pub fn select(mut features: Vec<Features>, policy: &Policy) -> Selection {
    mark_majority(&mut features);
    let mut out = Selection {
        total: features.len() as u64,
        ..Selection::default()
    };
    let mut seen_text: HashSet<[u8; 32]> = HashSet::new();
    let mut by_problem: HashMap<String, Vec<Features>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut removed: BTreeMap<&'static str, u64> = BTreeMap::new();
    for f in features {
        // `All` lets the incorrect and ungraded through to the filters that follow.
        let correct = if policy.select == Select::All {
            Some(true)
        } else {
            f.correct
        };
        let broken = f.verdicts.first_broken(&policy.rules);
        let reason = match correct {
            _ if f.finish_reason == FinishReason::Error => Some(REASONS[0]),
            None => Some(REASONS[1]),
            Some(false) => Some(REASONS[2]),
            Some(true) if f.finish_reason != FinishReason::Stop => Some(REASONS[3]),
            Some(true)
                if policy
                    .max_completion_tokens
                    .is_some_and(|m| f.completion_tokens > m) =>
            {
                Some(REASONS[4])
            }
            Some(true) if f.repeat_ratio > policy.max_repeat_ratio => Some(REASONS[5]),
            Some(true) if broken.is_some() => broken.map(Rule::reason),
            Some(true) => policy.seed_data.as_ref().and_then(|seed| {
                if !f.hint_infer {
                    Some(REASONS[17])
                } else if f.tool_calls <= f.tool_errors {
                    Some(REASONS[18])
                } else if !seed.baseline.contains(&f.problem_id) {
                    Some(REASONS[19])
                } else if seed.solved.contains(&f.problem_id) {
                    Some(REASONS[20])
                } else {
                    None
                }
            }),
        };
        if let Some(r) = reason {
            bump(&mut removed, r);
            continue;
        }
        if !seen_text.insert(f.text_hash) {
            bump(&mut removed, REASONS[21]);
            continue;
        }
        if !by_problem.contains_key(&f.problem_id) {
            order.push(f.problem_id.clone());
        }
        by_problem.entry(f.problem_id.clone()).or_default().push(f);
    }
    let mut survivors: Vec<Features> = Vec::new();
    for problem in order {
        let mut group = by_problem.remove(&problem).unwrap_or_default();
        match policy.select {
            Select::ResampleOnCorrect(_) => group.sort_by(resample_key),
            _ => group.sort_by_key(rank_key),
        }
        let mut kept: Vec<Features> = Vec::new();
        for f in group {
            if kept
                .iter()
                .any(|k| similarity(&k.minhash, &f.minhash) >= policy.near_duplicate)
            {
                bump(&mut removed, REASONS[22]);
                continue;
            }
            kept.push(f);
        }
        let limit = match policy.select {
            Select::Correct | Select::All => usize::MAX,
            Select::BestPerProblem => 1,
            Select::TopK(k) | Select::ResampleOnCorrect(k) => k,
        };
        if kept.len() > limit {
            *removed.entry("not selected").or_default() += (kept.len() - limit) as u64;
            kept.truncate(limit);
        }
        survivors.extend(kept);
    }
    if let Some(share) = policy.max_tool_share {
        let before = survivors.len();
        survivors = cap_tool_share(survivors, share);
        let over = (before - survivors.len()) as u64;
        if over > 0 {
            *removed.entry(REASONS[23]).or_default() += over;
        }
    }
    for f in survivors {
        for rule in rules::RULES {
            if !policy.rules.contains(&rule) && f.verdicts.breaks(rule) {
                bump(&mut out.would_drop, rule.reason());
            }
        }
        out.kept_with_tools += u64::from(f.tool_calls > 0);
        out.kept.push(f.at);
    }
    out.kept.sort_unstable();
    out.removed = removed;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::RULES;

    #[test]
    fn loops_score_high_and_prose_low() {
        let prose = "we expand the square and collect like terms then we check the sign of the discriminant before solving";
        let words: Vec<&str> = prose.split_whitespace().collect();
        assert!(repeat_ratio(&words) < 0.1);
        let looped = "wait let me check again ".repeat(40);
        let words: Vec<&str> = looped.split_whitespace().collect();
        assert!(repeat_ratio(&words) > 0.9);
    }

    #[test]
    fn minhash_tracks_similarity() {
        let a: String = (0..200).map(|i| format!("w{i} ")).collect();
        let mut b = a.clone();
        b.push_str("one more word");
        let c: String = (0..200).map(|i| format!("v{i} ")).collect();
        let (wa, wb, wc): (Vec<&str>, Vec<&str>, Vec<&str>) = (
            a.split_whitespace().collect(),
            b.split_whitespace().collect(),
            c.split_whitespace().collect(),
        );
        let (sa, sb, sc) = (minhash(&wa), minhash(&wb), minhash(&wc));
        assert!(similarity(&sa, &sb) > 0.9);
        assert!(similarity(&sa, &sc) < 0.1);
    }

    #[test]
    fn one_permutation_minhash_estimates_jaccard_and_densifies_short_texts() {
        // Texts of 1,000 words, the second with its last `k` words changed: they share the
        // 5-word shingles of the first 1,000 - k words, a Jaccard similarity known exactly.
        for k in [20usize, 100, 300] {
            let shared = (1_000 - k - (SHINGLE - 1)) as f32;
            let each = (1_000 - (SHINGLE - 1)) as f32;
            let jaccard = shared / (2.0 * each - shared);
            let mut sum = 0.0;
            for trial in 0..40 {
                let a: Vec<String> = (0..1_000).map(|i| format!("t{trial}w{i}")).collect();
                let mut b = a.clone();
                for w in &mut b[1_000 - k..] {
                    w.push('x');
                }
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                let b: Vec<&str> = b.iter().map(String::as_str).collect();
                let estimate = similarity(&minhash(&a), &minhash(&b));
                assert!(
                    (estimate - jaccard).abs() < 0.25,
                    "k {k}: {estimate} vs {jaccard}"
                );
                sum += estimate;
            }
            let mean = sum / 40.0;
            assert!(
                (mean - jaccard).abs() < 0.04,
                "k {k}: mean {mean} vs {jaccard}"
            );
        }
        // Fewer shingles than bins: the empty bins copy filled ones, the same way for equal
        // texts, so a short text is its own duplicate and unlike another short text.
        let short = ["solve", "for", "x"];
        assert_eq!(similarity(&minhash(&short), &minhash(&short)), 1.0);
        assert!(similarity(&minhash(&short), &minhash(&["solve", "for", "y"])) < 0.2);
        assert_eq!(minhash(&short).len(), MINHASH);
    }

    fn features(i: usize, correct: Option<bool>, finish: FinishReason, text: &str) -> Features {
        let words: Vec<&str> = text.split_whitespace().collect();
        Features {
            at: (0, i),
            problem_id: "p".into(),
            sample_index: i as u32,
            correct,
            finish_reason: finish,
            completion_tokens: 10,
            tool_calls: 1,
            tool_errors: 0,
            hint_infer: true,
            text_hash: Sha256::digest(text.as_bytes()).into(),
            minhash: minhash(&words),
            repeat_ratio: repeat_ratio(&words),
            verdicts: Verdicts::default(),
            answer_key: 0,
        }
    }

    #[test]
    fn every_rule_has_its_reason_in_order_after_the_repetition_check() {
        for (i, rule) in RULES.iter().enumerate() {
            assert_eq!(REASONS[6 + i], rule.reason());
        }
    }

    #[test]
    fn all_keeps_wrong_and_ungraded_rows_but_still_drops_errors_cuts_and_duplicates() {
        let rows = || {
            vec![
                features(0, Some(false), FinishReason::Stop, "one wrong answer here"),
                features(1, None, FinishReason::Stop, "an ungraded answer over there"),
                features(2, Some(true), FinishReason::Stop, "a right answer at last"),
                features(
                    3,
                    Some(false),
                    FinishReason::MaxNewTokens,
                    "cut off before the end",
                ),
                features(4, Some(false), FinishReason::Error, "the sandbox failed"),
                features(5, Some(false), FinishReason::Stop, "one wrong answer here"),
            ]
        };
        let all = select(
            rows(),
            &Policy {
                select: Select::All,
                ..Policy::default()
            },
        );
        assert_eq!(all.kept, [(0, 0), (0, 1), (0, 2)]);
        assert_eq!(all.removed.get("unfinished (cut by a limit)"), Some(&1));
        assert_eq!(all.removed.get(REASONS[0]), Some(&1));
        assert_eq!(all.removed.get("exact duplicate"), Some(&1));
        let correct = select(rows(), &Policy::default());
        assert_eq!(correct.kept, [(0, 2)]);
    }

    #[test]
    fn majority_keeps_the_most_common_answers_ties_included() {
        let mut rows: Vec<Features> = ["12", " 12", "7", "12", "9", "9"]
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut f = features(
                    i,
                    Some(true),
                    FinishReason::Stop,
                    &format!("row {i} says {a} here now"),
                );
                f.answer_key = answer_key(Some(a));
                f
            })
            .collect();
        // A second problem where two answers tie: both are its majority.
        for (i, a) in [(6, "1"), (7, "2")] {
            let mut f = features(
                i,
                Some(true),
                FinishReason::Stop,
                &format!("other {i} says {a} there"),
            );
            f.problem_id = "q".into();
            f.answer_key = answer_key(Some(a));
            rows.push(f);
        }
        // A row without an answer breaks it.
        rows.push(features(
            8,
            Some(true),
            FinishReason::Stop,
            "no answer in this one at all",
        ));
        let policy = Policy {
            rules: vec![Rule::Majority],
            ..Policy::default()
        };
        let s = select(rows, &policy);
        assert_eq!(s.kept, [(0, 0), (0, 1), (0, 3), (0, 6), (0, 7)]);
        assert_eq!(s.removed.get(Rule::Majority.reason()), Some(&4));
    }

    #[test]
    fn the_tool_share_cap_keeps_every_text_row_and_spreads_the_tool_rows_over_problems() {
        // Three problems with three tool rows each (p0 ranks its rows 0, 1, 2 best first), and
        // three text-only rows.
        let mut rows = Vec::new();
        for (p, problem) in ["a", "b", "c"].iter().enumerate() {
            for s in 0..3 {
                let mut f = features(
                    rows.len(),
                    Some(true),
                    FinishReason::Stop,
                    &format!("{problem} tool row {s} with its own words"),
                );
                f.problem_id = problem.to_string();
                f.sample_index = s;
                rows.push(f);
            }
            let mut f = features(
                rows.len(),
                Some(true),
                FinishReason::Stop,
                &format!("text only {p} reasoning without code"),
            );
            f.problem_id = problem.to_string();
            f.tool_calls = 0;
            f.sample_index = 9;
            rows.push(f);
        }
        let at = |kept: &[Features]| kept.iter().map(|f| f.at.1).collect::<Vec<_>>();
        // 50%: 3 text rows allow 3 tool rows, each problem's best one.
        let half = cap_tool_share(rows.clone(), 0.5);
        assert_eq!(at(&half), [0, 3, 4, 7, 8, 11]);
        // 25%: exactly 1 of 4; 60%: 4 tool rows (4.5 rounds down), one problem's second row.
        assert_eq!(cap_tool_share(rows.clone(), 0.25).len(), 4);
        let sixty = cap_tool_share(rows.clone(), 0.6);
        assert_eq!(sixty.iter().filter(|f| f.tool_calls > 0).count(), 4);
        assert!(at(&sixty).starts_with(&[0]) && at(&sixty).contains(&4));
        // Under the cap, or at 100%, nothing moves.
        assert_eq!(cap_tool_share(rows.clone(), 1.0).len(), 12);
        assert_eq!(cap_tool_share(rows.clone(), 0.75).len(), 12);
        // Through select: counted under its reason.
        let s = select(
            rows,
            &Policy {
                max_tool_share: Some(0.5),
                near_duplicate: 1.1,
                ..Policy::default()
            },
        );
        assert_eq!(s.kept.len(), 6);
        assert_eq!(s.removed.get(REASONS[23]), Some(&6));
    }
}
