//! The HTML page: summary tables, plots and the viewer, with its styles, script and sample
//! inlined so that the one file opens anywhere, offline.

use crate::html::escape;
use crate::plot::{Bars, Series};
use crate::sample::ViewerRow;
use crate::tally::{Tally, POSITION_BINS, TOOL_CALL_BINS};
use start_grader::rft::rules::{Rule, RULES};
use start_grader::rft::{Selection, REASONS};
use start_schemas::trajectory::ToolOutcome;
use std::fmt::Write;

const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("viewer.js");

/// Colours of the segment kinds and tool outcomes (the viewer's CSS uses the same).
const BLUE: &str = "#3b6fb6";
const GREEN: &str = "#3c9a5f";
const AMBER: &str = "#d4962a";
const RED: &str = "#c4453c";
const PURPLE: &str = "#7d55b3";
const GREY: &str = "#8a8f98";

/// Never-solved problems listed by name (the count covers them all).
const NEVER_SHOWN: usize = 12;

fn pct(n: u64, d: u64) -> String {
    if d == 0 {
        "–".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / d as f64)
    }
}

/// What the page is built from.
pub struct Page<'a> {
    /// The dataset's name (its URL or path).
    pub dataset: &'a str,
    /// Shards in the manifest.
    pub shards: usize,
    /// The aggregates.
    pub tally: &'a Tally,
    /// The export selection over every row.
    pub selection: &'a Selection,
    /// The viewer's rows.
    pub sample: &'a [ViewerRow],
    /// When the report was built.
    pub built_at: String,
}

impl Page<'_> {
    /// The whole document.
    pub fn render(&self) -> String {
        let t = self.tally;
        let mut h = String::with_capacity(64 * 1024);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>start report: {}</title><style>{STYLE}</style></head><body>",
            escape(self.dataset)
        );
        let _ = write!(
            h,
            "<header><h1>start report</h1><p class=\"meta\"><code>{}</code> · {} shards · built {}</p>",
            escape(self.dataset),
            self.shards,
            escape(&self.built_at)
        );
        let models: Vec<String> = t
            .models
            .iter()
            .map(|(n, s)| format!("{} ({s})", escape(n)))
            .collect();
        let jobs: Vec<String> = t.jobs.iter().map(|j| escape(j)).collect();
        let _ = write!(
            h,
            "<p class=\"meta\">model: {} · jobs: {}</p></header>",
            if models.is_empty() {
                "–".into()
            } else {
                models.join(", ")
            },
            if jobs.is_empty() {
                "–".into()
            } else {
                jobs.join(", ")
            }
        );
        self.summary(&mut h);
        self.plots(&mut h);
        self.viewer(&mut h);
        h.push_str("</body></html>\n");
        h
    }

    fn summary(&self, h: &mut String) {
        let t = self.tally;
        let acc = t.accuracy();
        let (calls, failed) = t.tool_calls();
        let never = t.never_solved();
        h.push_str("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">");
        for (label, value) in [
            ("rows", t.rows.to_string()),
            ("problems", t.problems.len().to_string()),
            ("accuracy", pct(acc.correct, acc.graded)),
            ("never solved", format!("{} problems", never.len())),
            ("completion tokens", t.completion_tokens.to_string()),
            ("prompt tokens", t.prompt_tokens.to_string()),
            ("tool calls", calls.to_string()),
            ("tool calls failed", pct(failed, calls)),
            (
                "export keeps",
                format!("{} rows", self.selection.kept.len()),
            ),
        ] {
            let _ = write!(
                h,
                "<div class=\"card\"><div class=\"value\">{}</div><div class=\"label\">{label}</div></div>",
                escape(&value)
            );
        }
        h.push_str("</div><div class=\"tables\">");

        h.push_str(
            "<table id=\"by-source\"><caption>Accuracy by source and kind</caption><thead><tr>\
             <th>source</th><th>kind</th><th>rows</th><th>problems</th><th>graded</th>\
             <th>correct</th><th>accuracy</th><th>tool calls / row</th><th>tokens / row</th>\
             </tr></thead><tbody>",
        );
        for ((source, kind), g) in &t.groups {
            let a = g.accuracy;
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.0}</td></tr>",
                escape(source),
                escape(kind),
                a.rows,
                g.problems.len(),
                a.graded,
                a.correct,
                pct(a.correct, a.graded),
                g.tool_calls as f64 / a.rows.max(1) as f64,
                g.completion_tokens as f64 / a.rows.max(1) as f64,
            );
        }
        h.push_str("</tbody></table>");

        h.push_str("<table id=\"finish\"><caption>Finish reasons and modes</caption><tbody>");
        for (reason, n) in &t.finish {
            let _ = write!(
                h,
                "<tr><td>finish: {reason}</td><td>{n}</td><td>{}</td></tr>",
                pct(*n, t.rows)
            );
        }
        for (mode, n) in &t.modes {
            let _ = write!(
                h,
                "<tr><td>mode: {mode}</td><td>{n}</td><td>{}</td></tr>",
                pct(*n, t.rows)
            );
        }
        for (trigger, n) in &t.hint_triggers {
            let _ = write!(
                h,
                "<tr><td>hints by {trigger}</td><td>{n}</td><td></td></tr>"
            );
        }
        h.push_str("</tbody></table>");

        let _ = write!(
            h,
            "<table id=\"export\"><caption>What <code>startctl export</code> keeps \
             (default filters, --select correct)</caption><tbody>\
             <tr><td>kept</td><td>{}</td><td>{}</td></tr>",
            self.selection.kept.len(),
            pct(self.selection.kept.len() as u64, self.selection.total)
        );
        for reason in REASONS.iter().copied().chain(["not selected"]) {
            if let Some(n) = self.selection.removed.get(reason) {
                let _ = write!(
                    h,
                    "<tr><td>dropped: {}</td><td>{n}</td><td>{}</td></tr>",
                    escape(reason),
                    pct(*n, self.selection.total)
                );
            }
        }
        h.push_str("</tbody></table>");

        let _ = write!(
            h,
            "<table id=\"rules\"><caption>Of the kept rows, what each published quality rule \
             would drop (<code>startctl export --filter NAME</code>)</caption><tbody>"
        );
        for rule in RULES {
            if rule == Rule::Judge {
                // Its verdicts come from a judge job, which the report does not read.
                let _ = write!(
                    h,
                    "<tr><td>{} ({})</td><td colspan=\"2\">needs a judge job's verdicts \
                     (<code>startctl judge</code>, then <code>export --judge</code>)</td></tr>",
                    escape(rule.reason()),
                    escape(rule.source()),
                );
                continue;
            }
            let n = self
                .selection
                .would_drop
                .get(rule.reason())
                .copied()
                .unwrap_or(0);
            let _ = write!(
                h,
                "<tr><td>{} ({})</td><td>{n}</td><td>{}</td></tr>",
                escape(rule.reason()),
                escape(rule.source()),
                pct(n, self.selection.kept.len() as u64)
            );
        }
        h.push_str("</tbody></table>");

        let _ = write!(
            h,
            "<table id=\"never\"><caption>Problems no sample solved ({})</caption><thead><tr>\
             <th>problem</th><th>source</th><th>samples</th></tr></thead><tbody>",
            never.len()
        );
        for (id, p) in never.iter().take(NEVER_SHOWN) {
            let _ = write!(
                h,
                "<tr><td><a href=\"#viewer\" data-problem=\"{0}\">{0}</a></td><td>{1}</td><td>{2}</td></tr>",
                escape(id),
                escape(&p.source),
                p.samples
            );
        }
        if never.len() > NEVER_SHOWN {
            let _ = write!(
                h,
                "<tr><td colspan=\"3\">… and {} more (filter the viewer by verdict)</td></tr>",
                never.len() - NEVER_SHOWN
            );
        }
        h.push_str("</tbody></table></div></section>");
    }

    fn plots(&self, h: &mut String) {
        let t = self.tally;
        h.push_str("<section id=\"plots\"><h2>Plots</h2><div class=\"grid\">");

        // Accuracy against tool calls.
        let categories: Vec<String> = (0..=TOOL_CALL_BINS)
            .map(|i| {
                if i == TOOL_CALL_BINS {
                    format!("{i}+")
                } else {
                    i.to_string()
                }
            })
            .collect();
        h.push_str(
            &Bars {
                title: "Accuracy by tool calls in the trajectory".into(),
                x_label: "tool calls".into(),
                y_label: "accuracy (graded rows)".into(),
                categories,
                series: vec![Series {
                    name: "accuracy".into(),
                    color: BLUE,
                    values: t
                        .by_tool_calls
                        .iter()
                        .map(|a| a.rate().unwrap_or(0.0))
                        .collect(),
                }],
                stacked: false,
                percent: true,
                notes: t
                    .by_tool_calls
                    .iter()
                    .map(|a| {
                        if a.rows > 0 {
                            format!("n={}", a.rows)
                        } else {
                            String::new()
                        }
                    })
                    .collect(),
                empty: None,
            }
            .svg(),
        );

        // Completion lengths.
        let max = t.lengths.iter().copied().max().unwrap_or(0);
        let bins = 20u32;
        let width = (max / bins + 1).max(1);
        let mut counts = vec![0f64; bins as usize];
        for l in &t.lengths {
            counts[((l / width) as usize).min(bins as usize - 1)] += 1.0;
        }
        h.push_str(
            &Bars {
                title: "Completion length".into(),
                x_label: "completion tokens".into(),
                y_label: "trajectories".into(),
                categories: (0..bins)
                    .map(|i| format!("{}–{}", i * width, (i + 1) * width - 1))
                    .collect(),
                series: vec![Series {
                    name: "rows".into(),
                    color: PURPLE,
                    values: counts,
                }],
                stacked: false,
                percent: false,
                notes: Vec::new(),
                empty: Some("no rows".into()),
            }
            .svg(),
        );

        // Tool-call outcomes by source.
        let colors = [GREEN, RED, AMBER, PURPLE, GREY];
        let sources: Vec<&String> = t.tool_outcomes.keys().collect();
        h.push_str(
            &Bars {
                title: "Tool-call outcomes by source".into(),
                x_label: "source".into(),
                y_label: "tool calls".into(),
                categories: sources.iter().map(|s| s.to_string()).collect(),
                series: ToolOutcome::ALL
                    .iter()
                    .enumerate()
                    .map(|(i, o)| Series {
                        name: o.as_str().into(),
                        color: colors[i],
                        values: sources
                            .iter()
                            .map(|s| t.tool_outcomes[*s][i] as f64)
                            .collect(),
                    })
                    .collect(),
                stacked: true,
                percent: false,
                notes: Vec::new(),
                empty: Some("no tool calls in this dataset".into()),
            }
            .svg(),
        );

        // pass@k.
        let pass = t.pass_at_k();
        h.push_str(
            &Bars {
                title: "pass@k over problems (RFT samples)".into(),
                x_label: "k".into(),
                y_label: "mean pass@k".into(),
                categories: pass.iter().map(|(k, _, _)| k.to_string()).collect(),
                series: vec![Series {
                    name: "pass@k".into(),
                    color: GREEN,
                    values: pass.iter().map(|(_, p, _)| *p).collect(),
                }],
                stacked: false,
                percent: true,
                notes: pass
                    .iter()
                    .map(|(_, _, n)| format!("{n} problems"))
                    .collect(),
                empty: Some(
                    "no problem solved by any RFT sample (or no RFT rows: pass@k is for \
                     Hint-RFT jobs, which sample several per problem)"
                        .into(),
                ),
            }
            .svg(),
        );

        // Where hints and code fall.
        h.push_str(
            &Bars {
                title: "Where hints and code blocks start in the trajectory".into(),
                x_label: "position in the trajectory (share of its tokens)".into(),
                y_label: "segments".into(),
                categories: (0..POSITION_BINS)
                    .map(|i| format!("{}%", i * 100 / POSITION_BINS))
                    .collect(),
                series: vec![
                    Series {
                        name: "hint".into(),
                        color: AMBER,
                        values: t.hint_positions.iter().map(|v| *v as f64).collect(),
                    },
                    Series {
                        name: "code".into(),
                        color: BLUE,
                        values: t.code_positions.iter().map(|v| *v as f64).collect(),
                    },
                ],
                stacked: false,
                percent: false,
                notes: Vec::new(),
                empty: Some("no hints and no code blocks in this dataset".into()),
            }
            .svg(),
        );

        // Per-problem solve rates.
        let mut rates = [0f64; 6];
        for p in t.problems.values() {
            let r = f64::from(p.correct) / f64::from(p.samples.max(1));
            let i = if p.correct == 0 {
                0
            } else if p.correct == p.samples {
                5
            } else {
                1 + ((r * 4.0) as usize).min(3)
            };
            rates[i] += 1.0;
        }
        h.push_str(
            &Bars {
                title: "Problems by share of their samples correct".into(),
                x_label: "samples correct".into(),
                y_label: "problems".into(),
                categories: ["none", "<25%", "25–50%", "50–75%", "75–<100%", "all"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                series: vec![Series {
                    name: "problems".into(),
                    color: BLUE,
                    values: rates.to_vec(),
                }],
                stacked: false,
                percent: false,
                notes: Vec::new(),
                empty: Some("no rows".into()),
            }
            .svg(),
        );
        h.push_str("</div></section>");
    }

    fn viewer(&self, h: &mut String) {
        let _ = write!(
            h,
            "<section id=\"viewer\"><h2>Trajectories</h2>\
             <p class=\"meta\">A sample of {} of the {} rows, drawn per source, kind, verdict \
             and finish reason; long texts are cut in the middle for display.</p>\
             <div class=\"filters\">\
             <label>source <select id=\"f-source\"></select></label>\
             <label>kind <select id=\"f-kind\"></select></label>\
             <label>verdict <select id=\"f-verdict\"></select></label>\
             <label>finish <select id=\"f-finish\"></select></label>\
             <label>problem <input id=\"f-problem\" type=\"search\" placeholder=\"id contains\"></label>\
             <span id=\"shown\"></span></div>\
             <div class=\"legend\"><span class=\"seg-reasoning\">reasoning</span>\
             <span class=\"seg-hint\">hint</span><span class=\"seg-code\">code</span>\
             <span class=\"seg-output\">output</span><span class=\"seg-answer\">answer</span></div>\
             <div id=\"list\"></div><button id=\"more\" hidden>show more</button></section>",
            self.sample.len(),
            self.tally.rows
        );
        // Every `<` (only ever inside a JSON string) as `\u003c`: no text in the sample can
        // close the script element or open a comment in it.
        let json = serde_json::to_string(self.sample)
            .expect("viewer rows serialise")
            .replace('<', "\\u003c");
        let _ = write!(
            h,
            "<script type=\"application/json\" id=\"rows\">{json}</script><script>{SCRIPT}</script>"
        );
    }
}
