//! Which trajectories the viewer shows, and how much of each.
//!
//! A 50k-row dataset of QwQ trajectories is gigabytes of text; the report embeds a sample.
//! Rows are drawn per stratum (source, kind, verdict, finish reason) so that a rare kind of
//! row (an error, the one wrong source) is in the sample even when it is 0.1% of the data,
//! and by a hash of the row rather than a random number so the same dataset gives the same
//! report. Long texts are cut in the middle for display only; the dataset keeps them whole.

use serde::Serialize;
use start_schemas::trajectory::Trajectory;
use std::collections::{BTreeMap, BinaryHeap};

/// Characters of one segment shown at most (its head and tail).
pub const SEGMENT_CHARS: usize = 3000;
/// Characters of one trajectory's segments shown at most; later segments show their length.
pub const ROW_CHARS: usize = 24_000;
/// Characters of the user turn and of the grader's detail shown at most.
pub const SIDE_CHARS: usize = 2000;

/// One trajectory as the viewer shows it (short keys: there are hundreds in the page).
#[derive(Clone, Debug, Serialize)]
pub struct ViewerRow {
    /// Problem id.
    pub problem: String,
    /// Sample index.
    pub sample: u32,
    /// Source.
    pub source: String,
    /// Problem kind.
    pub kind: String,
    /// Generation mode.
    pub mode: &'static str,
    /// `correct`, `wrong` or `ungraded`.
    pub verdict: &'static str,
    /// Partial credit.
    pub score: Option<f32>,
    /// Finish reason.
    pub finish: &'static str,
    /// Why it ended with `error`.
    pub finish_detail: Option<String>,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Completion tokens.
    pub completion_tokens: u32,
    /// Seconds.
    pub wall_s: f64,
    /// The extracted answer.
    pub answer: Option<String>,
    /// The grader's detail (JSON text), cut to [`SIDE_CHARS`].
    pub grading: Option<String>,
    /// The user turn, cut to [`SIDE_CHARS`].
    pub user: String,
    /// Segments in order.
    pub segments: Vec<ViewerSegment>,
}

/// One segment as shown.
#[derive(Clone, Debug, Serialize)]
pub struct ViewerSegment {
    /// `reasoning`, `hint`, `code`, `output`, `answer`.
    pub kind: &'static str,
    /// Its text, cut to [`SEGMENT_CHARS`]; empty past [`ROW_CHARS`].
    pub text: String,
    /// Characters not shown.
    pub hidden: usize,
    /// Tokens.
    pub tokens: usize,
    /// Hint segments: its library kind and trigger.
    pub hint: Option<String>,
    /// Code segments that ran: how.
    pub tool: Option<ViewerTool>,
}

/// A code execution as shown.
#[derive(Clone, Debug, Serialize)]
pub struct ViewerTool {
    /// `ok`, `error`, `timeout`, `memory`, `sandbox`.
    pub outcome: &'static str,
    /// Exit code.
    pub exit: Option<i32>,
    /// Round trip, ms.
    pub ms: f64,
    /// Output cut to its limit.
    pub truncated: bool,
    /// The sandbox's error.
    pub error: Option<String>,
}

/// `s` cut to about `max` characters: its head and tail around a marker; with the count cut.
fn cut(s: &str, max: usize) -> (String, usize) {
    let chars = s.chars().count();
    if chars <= max {
        return (s.to_string(), 0);
    }
    let head = max * 2 / 3;
    let tail = max - head;
    let hidden = chars - head - tail;
    let mut out: String = s.chars().take(head).collect();
    out.push_str(&format!("\n[… {hidden} characters not shown …]\n"));
    out.extend(s.chars().skip(chars - tail));
    (out, hidden)
}

impl ViewerRow {
    /// The viewer's form of `t`.
    pub fn of(t: &Trajectory) -> Self {
        let mut budget = ROW_CHARS;
        let segments = t
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let chars = s.text.chars().count();
                let (text, hidden) = if budget == 0 {
                    (String::new(), chars)
                } else {
                    cut(&s.text, SEGMENT_CHARS.min(budget))
                };
                budget = budget.saturating_sub(chars - hidden);
                let tool = t
                    .tool_calls
                    .iter()
                    .find(|c| c.segment as usize == i)
                    .map(|c| ViewerTool {
                        outcome: c.outcome().as_str(),
                        exit: c.exit_code,
                        ms: (c.duration_ms * 10.0).round() / 10.0,
                        truncated: c.truncated,
                        error: c.error.clone(),
                    });
                ViewerSegment {
                    kind: s.kind.as_str(),
                    text,
                    hidden,
                    tokens: s.tokens.len(),
                    hint: s
                        .hint
                        .as_ref()
                        .map(|h| format!("{} ({})", h.kind, h.trigger.as_str())),
                    tool,
                }
            })
            .collect();
        Self {
            problem: t.problem_id.clone(),
            sample: t.sample_index,
            source: t.source.clone(),
            kind: t.kind.to_string(),
            mode: t.mode.as_str(),
            verdict: verdict(t.correct),
            score: t.score,
            finish: t.finish_reason.as_str(),
            finish_detail: t.finish_detail.clone(),
            prompt_tokens: t.prompt_tokens,
            completion_tokens: t.completion_tokens,
            wall_s: (t.wall_time_s * 100.0).round() / 100.0,
            answer: t.final_answer.clone(),
            grading: t.grading_detail.as_deref().map(|g| cut(g, SIDE_CHARS).0),
            user: cut(&t.user_message, SIDE_CHARS).0,
            segments,
        }
    }
}

/// The viewer's word for a verdict.
pub fn verdict(correct: Option<bool>) -> &'static str {
    match correct {
        Some(true) => "correct",
        Some(false) => "wrong",
        None => "ungraded",
    }
}

/// A row in a stratum's heap: the largest priority on top, so it is the one dropped.
struct Candidate {
    priority: u64,
    row: ViewerRow,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.priority == other.priority
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority.cmp(&other.priority)
    }
}

/// The stratified, hash-ordered sample.
pub struct Sampler {
    target: usize,
    strata: BTreeMap<(String, String, &'static str, &'static str), BinaryHeap<Candidate>>,
}

impl Sampler {
    /// A sample of at most `target` rows.
    pub fn new(target: usize) -> Self {
        Self {
            target,
            strata: BTreeMap::new(),
        }
    }

    /// Offers `t`; it is kept while it is among the `target` lowest-priority rows of its
    /// stratum (a stratum never needs more than the whole sample).
    pub fn offer(&mut self, t: &Trajectory) {
        if self.target == 0 {
            return;
        }
        let priority = priority(t);
        let cap = self.cap();
        let heap = self
            .strata
            .entry((
                t.source.clone(),
                t.kind.to_string(),
                verdict(t.correct),
                t.finish_reason.as_str(),
            ))
            .or_default();
        if heap.len() >= cap {
            match heap.peek() {
                Some(top) if top.priority > priority => {
                    heap.pop();
                }
                _ => return,
            }
        }
        heap.push(Candidate {
            priority,
            row: ViewerRow::of(t),
        });
    }

    /// Rows kept per stratum: the whole sample while strata are few, fewer as they grow, so
    /// memory stays near a few times the sample (at least 8 per stratum for rare kinds).
    fn cap(&self) -> usize {
        (self.target * 4 / self.strata.len().max(1)).clamp(8, self.target)
    }

    /// The sample: strata take turns (lowest priority first) until `target` rows are drawn,
    /// so each stratum is represented before any has many; ordered for display.
    pub fn finish(self) -> Vec<ViewerRow> {
        let mut queues: Vec<Vec<Candidate>> = self
            .strata
            .into_values()
            .map(|h| {
                let mut v = h.into_sorted_vec();
                v.reverse();
                v
            })
            .collect();
        let mut out = Vec::new();
        while out.len() < self.target && queues.iter().any(|q| !q.is_empty()) {
            for q in &mut queues {
                if out.len() < self.target {
                    if let Some(c) = q.pop() {
                        out.push(c.row);
                    }
                }
            }
        }
        out.sort_by(|a, b| {
            (&a.source, &a.problem, a.sample).cmp(&(&b.source, &b.problem, b.sample))
        });
        out
    }
}

/// A row's place in the draw: FNV-1a over its identity and text hash, so the draw is the
/// same on every build of the report and unrelated to the rows' order in the shards.
fn priority(t: &Trajectory) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in t
        .problem_id
        .bytes()
        .chain(t.sample_index.to_le_bytes())
        .chain(t.trajectory_sha256.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    use start_schemas::trajectory::FinishReason;

    fn rows() -> Vec<Trajectory> {
        (0..600)
            .map(|i| {
                let mut t = start_tests::trajectory(i);
                t.source = "common".into();
                t.kind = start_schemas::problem::ProblemKind::Math;
                t.correct = Some(false);
                t.finish_reason = FinishReason::Stop;
                if i == 457 {
                    t.source = "rare".into();
                    t.finish_reason = FinishReason::Error;
                }
                t
            })
            .collect()
    }

    fn draw(rows: impl Iterator<Item = Trajectory>, n: usize) -> Vec<(String, u32)> {
        let mut s = Sampler::new(n);
        for t in rows {
            s.offer(&t);
        }
        s.finish()
            .into_iter()
            .map(|r| (r.problem, r.sample))
            .collect()
    }

    #[test]
    fn a_rare_stratum_is_drawn_and_the_draw_ignores_row_order() {
        let rows = rows();
        let a = draw(rows.clone().into_iter(), 10);
        assert_eq!(a.len(), 10);
        let rare = (rows[457].problem_id.clone(), rows[457].sample_index);
        assert!(
            a.contains(&rare),
            "the one error row is in a sample of 10 of 600"
        );
        let b = draw(rows.into_iter().rev(), 10);
        assert_eq!(
            a, b,
            "the same rows, read in another order, give the same sample"
        );
    }

    #[test]
    fn a_long_text_keeps_its_head_and_tail_and_says_how_much_is_cut() {
        let s: String = "é".repeat(5000);
        let (c, hidden) = cut(&s, 300);
        assert_eq!(hidden, 4700);
        assert!(c.starts_with(&"é".repeat(200)));
        assert!(c.ends_with(&"é".repeat(100)));
        assert!(c.contains("4700 characters not shown"));
        assert_eq!(cut("short", 300), ("short".to_string(), 0));
    }
}
