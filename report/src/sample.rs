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
/// The largest figure the viewer embeds (a plot from matplotlib is 20 to 40 KiB); each row
/// shows its first figure at most, so the rows a draw holds stay small.
pub const FIGURE_BYTES: usize = 64 << 10;
/// Bytes of figures one report embeds at most; rows past it say their figures are not shown.
pub const REPORT_FIGURE_BYTES: usize = 4 << 20;

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
    /// Which tool ran it (`python`, `sql`).
    pub name: String,
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
    /// The first figure the block drew, as a `data:image/png;base64,` URL, when it is small
    /// enough ([`FIGURE_BYTES`]) and the report's budget allows ([`REPORT_FIGURE_BYTES`]).
    pub figure: Option<String>,
    /// Figures the block drew that are not shown.
    pub figures_hidden: usize,
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
        let mut figure_shown = false;
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
                    .map(|c| {
                        let drawn: Vec<_> = t
                            .figures
                            .iter()
                            .filter(|f| f.segment as usize == i)
                            .collect();
                        let figure = drawn
                            .first()
                            .filter(|f| f.png.len() <= FIGURE_BYTES && !figure_shown)
                            .map(|f| {
                                use base64::Engine;
                                format!(
                                    "data:image/png;base64,{}",
                                    base64::engine::general_purpose::STANDARD.encode(&f.png)
                                )
                            });
                        figure_shown |= figure.is_some();
                        ViewerTool {
                            name: c.tool.clone(),
                            outcome: c.outcome().as_str(),
                            exit: c.exit_code,
                            ms: (c.duration_ms * 10.0).round() / 10.0,
                            truncated: c.truncated,
                            error: c.error.clone(),
                            figures_hidden: drawn.len() - usize::from(figure.is_some()),
                            figure,
                        }
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
        // The figures, in display order, while the report's budget lasts.
        let mut left = REPORT_FIGURE_BYTES;
        for tool in out
            .iter_mut()
            .flat_map(|r| &mut r.segments)
            .filter_map(|s| s.tool.as_mut())
        {
            let Some(url) = &tool.figure else { continue };
            if url.len() <= left {
                left -= url.len();
            } else {
                tool.figure = None;
                tool.figures_hidden += 1;
            }
        }
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
    fn a_rows_first_small_figure_is_embedded_within_the_reports_budget() {
        let mut t = start_tests::trajectory(1);
        let code = t.tool_calls[0].segment;
        let figure = |bytes: usize| start_schemas::trajectory::Figure {
            segment: code,
            index: 0,
            width: 4,
            height: 3,
            size: bytes as u64,
            png: vec![7; bytes],
        };
        t.figures = vec![figure(100), figure(200), figure(FIGURE_BYTES + 1)];
        let row = ViewerRow::of(&t);
        let tool = row.segments[code as usize].tool.as_ref().unwrap();
        assert_eq!(tool.name, "python");
        let url = tool.figure.as_deref().unwrap();
        assert!(url.starts_with("data:image/png;base64,BwcH"), "{url}");
        assert_eq!(tool.figures_hidden, 2);
        // 70 rows of 60 KiB figures pass the 4 MiB budget: the later ones are counted hidden.
        let mut sampler = Sampler::new(100);
        for i in 0..70 {
            let mut t = start_tests::trajectory(4 * i + 1);
            t.figures = vec![figure(60 << 10)];
            sampler.offer(&t);
        }
        let rows = sampler.finish();
        let tools: Vec<&ViewerTool> = rows
            .iter()
            .flat_map(|r| &r.segments)
            .filter_map(|s| s.tool.as_ref())
            .filter(|t| t.figure.is_some() || t.figures_hidden > 0)
            .collect();
        let shown = tools.iter().filter(|t| t.figure.is_some()).count();
        let bytes: usize = tools
            .iter()
            .filter_map(|t| t.figure.as_ref())
            .map(String::len)
            .sum();
        assert!(bytes <= REPORT_FIGURE_BYTES, "{bytes}");
        // A data URL is its 22-byte prefix and the base64 of the PNG.
        let url_len = (60usize << 10).div_ceil(3) * 4 + 22;
        assert_eq!(shown, REPORT_FIGURE_BYTES / url_len);
        assert_eq!(tools.len() - shown, 70 - shown);
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
