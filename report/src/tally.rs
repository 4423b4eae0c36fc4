//! Aggregates over every row of a dataset, gathered in one pass: what the report's summary and
//! plots show and what `startctl inspect` prints, from the same counts (so `startctl run`, which
//! does both, reads its dataset once). Kept small per row (counters, two lengths, one
//! [`Features`] for the export selection) so that a large dataset is tallied in bounded memory.

use start_grader::rft::Features;
use start_schemas::trajectory::{FinishReason, Mode, SegmentKind, ToolOutcome, Trajectory};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Tool calls per trajectory are binned up to this many; the last bin is "this many or more".
pub const TOOL_CALL_BINS: usize = 8;
/// Bins over the relative position in a trajectory (0 = its first token, 1 = its last).
pub const POSITION_BINS: usize = 20;

/// Rows, graded rows and correct rows of some group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accuracy {
    /// Rows.
    pub rows: u64,
    /// Of which graded.
    pub graded: u64,
    /// Of which correct.
    pub correct: u64,
}

impl Accuracy {
    fn add(&mut self, t: &Trajectory) {
        self.rows += 1;
        if let Some(c) = t.correct {
            self.graded += 1;
            self.correct += u64::from(c);
        }
    }

    /// Correct over graded, when any row was graded.
    pub fn rate(&self) -> Option<f64> {
        (self.graded > 0).then(|| self.correct as f64 / self.graded as f64)
    }
}

/// One (source, kind) group of the summary table.
#[derive(Clone, Debug, Default)]
pub struct Group {
    /// Accuracy of its rows.
    pub accuracy: Accuracy,
    /// Problems in it.
    pub problems: BTreeSet<String>,
    /// Completion tokens over its rows.
    pub completion_tokens: u64,
    /// Tool calls over its rows.
    pub tool_calls: u64,
}

/// Samples and correct samples of one problem.
#[derive(Clone, Debug, Default)]
pub struct ProblemTally {
    /// Its source.
    pub source: String,
    /// Samples (rows).
    pub samples: u32,
    /// Of which correct.
    pub correct: u32,
    /// Samples generated in RFT mode (pass@k is over these).
    pub rft_samples: u32,
    /// Of which correct.
    pub rft_correct: u32,
}

/// Where hints went and what followed them.
#[derive(Clone, Debug, Default)]
pub struct HintTally {
    /// Hints per trajectory.
    pub per_row: Vec<u32>,
    /// Hints right after text that ends with a trigger word ("Wait Wait"), when the tally was
    /// given the trigger words ([`Tally::with_trigger_check`]).
    pub doubled: u64,
    /// Code blocks that ran.
    pub code_blocks: u64,
    /// Of which directly after a hint (the hint opened them).
    pub after_hint: u64,
    /// Rows that reached the tool-call limit.
    pub at_tool_limit: u64,
}

/// Whether text ends with a trigger word (the hint library's rule, given by the caller).
pub type TriggerCheck = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Everything the report and inspect aggregate.
#[derive(Default)]
pub struct Tally {
    /// Rows.
    pub rows: u64,
    /// By (source, kind).
    pub groups: BTreeMap<(String, String), Group>,
    /// By problem id.
    pub problems: HashMap<String, ProblemTally>,
    /// Rows by mode.
    pub modes: BTreeMap<&'static str, u64>,
    /// Rows by finish reason.
    pub finish: BTreeMap<&'static str, u64>,
    /// Prompt tokens over all rows.
    pub prompt_tokens: u64,
    /// Completion tokens over all rows.
    pub completion_tokens: u64,
    /// Each row's completion tokens (for the length distribution).
    pub lengths: Vec<u32>,
    /// Accuracy by tool calls in the trajectory (index = calls, capped at [`TOOL_CALL_BINS`]).
    pub by_tool_calls: [Accuracy; TOOL_CALL_BINS + 1],
    /// Tool-call outcomes by source, counted in [`ToolOutcome::ALL`] order.
    pub tool_outcomes: BTreeMap<String, [u64; 5]>,
    /// Round trips of every tool call, milliseconds.
    pub tool_ms: Vec<f32>,
    /// Where hints start, by relative position in the trajectory (token offset).
    pub hint_positions: [u64; POSITION_BINS],
    /// Where code blocks start.
    pub code_positions: [u64; POSITION_BINS],
    /// Hints by what triggered them (`word`, `end_of_thinking`; `unknown` for schema-1 rows).
    pub hint_triggers: BTreeMap<&'static str, u64>,
    /// Jobs the rows come from.
    pub jobs: BTreeSet<String>,
    /// Models (name, first 12 hex of sha256).
    pub models: BTreeSet<(String, String)>,
    /// The export selection's features of every row.
    pub features: Vec<Features>,
    /// Each row's prompt tokens.
    pub prompt_lengths: Vec<u32>,
    /// Rows by their number of tool calls (not capped).
    pub tool_calls_per_row: BTreeMap<usize, u64>,
    /// Failed tool calls, as the rows count them.
    pub tool_errors: u64,
    /// Tool calls by tool (`python`, `sql`).
    pub by_tool: BTreeMap<String, u64>,
    /// Figures kept on the rows.
    pub figures: u64,
    /// Where hints went and what followed them.
    pub hints: HintTally,
    trigger_check: Option<TriggerCheck>,
    /// Leaves [`Tally::features`] empty ([`Tally::without_features`]).
    skip_features: bool,
}

impl Tally {
    /// A tally that also counts hints left right after a trigger word (`check`).
    pub fn with_trigger_check(check: Option<TriggerCheck>) -> Self {
        Self {
            trigger_check: check,
            ..Self::default()
        }
    }

    /// A tally that keeps no export features: for a summary that shows no selection
    /// (`startctl inspect`), which then holds a few bytes a row, not a few hundred, and skips
    /// the text features' hashing.
    pub fn without_features(mut self) -> Self {
        self.skip_features = true;
        self
    }

    /// Makes room for `rows` rows' per-row values at once, so that the vectors that grow with
    /// the rows (the export features above all) never double past what the dataset needs:
    /// growing by doubling holds the old and the new buffer together, up to three times the
    /// features' size at the peak. `rows` comes from a manifest nobody here wrote, so a room
    /// that cannot be had (a damaged count) is not taken, and the vectors grow as they would.
    pub fn reserve(&mut self, rows: usize) {
        if !self.skip_features {
            let _ = self.features.try_reserve_exact(rows);
        }
        let _ = self.lengths.try_reserve_exact(rows);
        let _ = self.prompt_lengths.try_reserve_exact(rows);
        let _ = self.hints.per_row.try_reserve_exact(rows);
    }

    /// Adds the row at (shard, row) `at`.
    pub fn add(&mut self, t: &Trajectory, at: (usize, usize)) {
        self.rows += 1;
        self.prompt_lengths.push(t.prompt_tokens);
        *self
            .tool_calls_per_row
            .entry(t.tool_calls.len())
            .or_default() += 1;
        self.tool_errors += u64::from(t.tool_errors);
        for call in &t.tool_calls {
            *self.by_tool.entry(call.tool.clone()).or_default() += 1;
        }
        self.figures += t.figures.len() as u64;
        self.add_hints(t);
        let group = self
            .groups
            .entry((t.source.clone(), t.kind.to_string()))
            .or_default();
        group.accuracy.add(t);
        if !group.problems.contains(&t.problem_id) {
            group.problems.insert(t.problem_id.clone());
        }
        group.completion_tokens += u64::from(t.completion_tokens);
        group.tool_calls += t.tool_calls.len() as u64;

        let p = self.problems.entry(t.problem_id.clone()).or_default();
        if p.samples == 0 {
            p.source = t.source.clone();
        }
        let correct = u32::from(t.correct == Some(true));
        p.samples += 1;
        p.correct += correct;
        if t.mode == Mode::Rft {
            p.rft_samples += 1;
            p.rft_correct += correct;
        }

        *self.modes.entry(t.mode.as_str()).or_default() += 1;
        *self.finish.entry(t.finish_reason.as_str()).or_default() += 1;
        self.prompt_tokens += u64::from(t.prompt_tokens);
        self.completion_tokens += u64::from(t.completion_tokens);
        self.lengths.push(t.completion_tokens);
        self.by_tool_calls[t.tool_calls.len().min(TOOL_CALL_BINS)].add(t);

        if !t.tool_calls.is_empty() {
            let outcomes = self.tool_outcomes.entry(t.source.clone()).or_default();
            for call in &t.tool_calls {
                let o = call.outcome();
                let i = ToolOutcome::ALL.iter().position(|x| *x == o).unwrap_or(0);
                outcomes[i] += 1;
                self.tool_ms.push(call.duration_ms as f32);
            }
        }

        let total: usize = t.segments.iter().map(|s| s.tokens.len()).sum();
        let mut offset = 0usize;
        for s in &t.segments {
            let bin = (offset * POSITION_BINS)
                .checked_div(total)
                .map_or(0, |b| b.min(POSITION_BINS - 1));
            match s.kind {
                SegmentKind::Hint => {
                    self.hint_positions[bin] += 1;
                    let by = s.hint.as_ref().map_or("unknown", |h| h.trigger.as_str());
                    *self.hint_triggers.entry(by).or_default() += 1;
                }
                SegmentKind::Code => self.code_positions[bin] += 1,
                _ => {}
            }
            offset += s.tokens.len();
        }

        if !self.jobs.contains(&t.job_id) {
            self.jobs.insert(t.job_id.clone());
        }
        let model = (
            t.model_name.clone(),
            t.model_sha256.chars().take(12).collect(),
        );
        if !self.models.contains(&model) {
            self.models.insert(model);
        }
        if !self.skip_features {
            self.features.push(Features::of(t, at));
        }
    }

    fn add_hints(&mut self, t: &Trajectory) {
        let h = &mut self.hints;
        let mut n = 0;
        let mut before = String::new();
        for (i, s) in t.segments.iter().enumerate() {
            if s.kind == SegmentKind::Hint {
                n += 1;
                if let Some(check) = &self.trigger_check {
                    h.doubled += u64::from(check(&before));
                }
            }
            if s.kind == SegmentKind::Code {
                h.code_blocks += 1;
                h.after_hint += u64::from(i > 0 && t.segments[i - 1].kind == SegmentKind::Hint);
            }
            if self.trigger_check.is_some() {
                before.push_str(&s.text);
            }
        }
        h.per_row.push(n);
        h.at_tool_limit +=
            u64::from(t.tool_limit_reached || t.finish_reason == FinishReason::ToolLimit);
    }

    /// Accuracy over every row.
    pub fn accuracy(&self) -> Accuracy {
        let mut a = Accuracy::default();
        for g in self.groups.values() {
            a.rows += g.accuracy.rows;
            a.graded += g.accuracy.graded;
            a.correct += g.accuracy.correct;
        }
        a
    }

    /// Tool calls over every row, and of which failed (any outcome but ok).
    pub fn tool_calls(&self) -> (u64, u64) {
        let mut all = 0;
        let mut failed = 0;
        for o in self.tool_outcomes.values() {
            all += o.iter().sum::<u64>();
            failed += o[1..].iter().sum::<u64>();
        }
        (all, failed)
    }

    /// Problems no sample solved, sorted by id.
    pub fn never_solved(&self) -> Vec<(&str, &ProblemTally)> {
        let mut v: Vec<_> = self
            .problems
            .iter()
            .filter(|(_, p)| p.correct == 0)
            .map(|(id, p)| (id.as_str(), p))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Mean unbiased pass@k (Chen et al. 2021) over the problems with at least `k` RFT
    /// samples, for each `k` in 1, 2, 4, ... up to the most samples any problem has; with
    /// the problems it is over.
    pub fn pass_at_k(&self) -> Vec<(u32, f64, usize)> {
        let max = self
            .problems
            .values()
            .map(|p| p.rft_samples)
            .max()
            .unwrap_or(0);
        let mut out = Vec::new();
        let mut k = 1;
        while k <= max {
            let mut sum = 0.0;
            let mut n = 0;
            for p in self.problems.values().filter(|p| p.rft_samples >= k) {
                sum += pass_at_k(p.rft_samples, p.rft_correct, k);
                n += 1;
            }
            out.push((k, sum / n as f64, n));
            k *= 2;
        }
        out
    }
}

/// 1 - C(n - c, k) / C(n, k): the chance that k of n samples, c of them correct, drawn
/// without replacement, hold at least one correct one.
pub fn pass_at_k(n: u32, c: u32, k: u32) -> f64 {
    if n.saturating_sub(c) < k {
        return 1.0;
    }
    let mut miss = 1.0;
    for i in (n - c + 1)..=n {
        miss *= 1.0 - f64::from(k) / f64::from(i);
    }
    1.0 - miss
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over every k-subset of n samples.
    fn enumerate(n: u32, c: u32, k: u32) -> f64 {
        let (mut hit, mut all) = (0u64, 0u64);
        for mask in 0u32..(1 << n) {
            if mask.count_ones() != k {
                continue;
            }
            all += 1;
            // Samples 0..c are the correct ones.
            hit += u64::from(mask & ((1 << c) - 1) != 0);
        }
        hit as f64 / all as f64
    }

    #[test]
    fn a_tally_without_features_counts_the_same_and_keeps_no_row_features() {
        let mut full = Tally::default();
        let mut lean = Tally::default().without_features();
        lean.reserve(40);
        for i in 0..40 {
            let t = start_tests::trajectory(i);
            full.add(&t, (0, i as usize));
            lean.add(&t, (0, i as usize));
        }
        assert_eq!((full.rows, lean.rows), (40, 40));
        assert_eq!(full.lengths, lean.lengths);
        assert_eq!(full.problems.len(), lean.problems.len());
        assert_eq!(full.tool_errors, lean.tool_errors);
        assert_eq!((full.features.len(), lean.features.len()), (40, 0));
        assert_eq!(lean.features.capacity(), 0);
        // A damaged manifest's count reserves nothing and aborts nothing.
        let mut damaged = Tally::default();
        damaged.reserve(usize::MAX);
        damaged.add(&start_tests::trajectory(0), (0, 0));
        assert_eq!(damaged.features.len(), 1);
    }

    #[test]
    fn pass_at_k_is_the_share_of_k_subsets_holding_a_correct_sample() {
        for n in 1..=10 {
            for c in 0..=n {
                for k in 1..=n {
                    let (a, b) = (pass_at_k(n, c, k), enumerate(n, c, k));
                    assert!((a - b).abs() < 1e-9, "n={n} c={c} k={k}: {a} vs {b}");
                }
            }
        }
    }
}
