//! Bar charts as inline SVG: drawn here rather than by a JavaScript plotting library, so the
//! report needs no network and no script to show its plots, and stays a few kilobytes a plot.

use crate::html::escape;
use std::fmt::Write;

/// One series of bars.
pub struct Series {
    /// Legend name.
    pub name: String,
    /// CSS colour.
    pub color: &'static str,
    /// One value per category.
    pub values: Vec<f64>,
}

/// A bar chart: grouped or stacked series over categories.
pub struct Bars {
    /// Title above the plot.
    pub title: String,
    /// What the x axis is.
    pub x_label: String,
    /// What the y axis is.
    pub y_label: String,
    /// Category labels.
    pub categories: Vec<String>,
    /// The series.
    pub series: Vec<Series>,
    /// Stack the series instead of grouping them.
    pub stacked: bool,
    /// Values are shares in [0, 1], shown as percentages on a 0-100% axis.
    pub percent: bool,
    /// Text above each category (e.g. its row count).
    pub notes: Vec<String>,
    /// Shown instead of the plot when there is nothing to plot.
    pub empty: Option<String>,
}

const W: f64 = 560.0;
const H: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 64.0;

/// Rounds `max` up to a 1, 2 or 5 times a power of ten, for the axis.
fn nice(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= max {
            return m * p;
        }
    }
    10.0 * p
}

fn number(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Bars {
    /// The chart as an `<svg class="plot">` element inside a `<figure>`.
    pub fn svg(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<figure class=\"chart\"><figcaption>{}</figcaption>",
            escape(&self.title)
        );
        let has_data = self
            .series
            .iter()
            .any(|s| s.values.iter().any(|v| *v > 0.0));
        if let (false, Some(why)) = (has_data, &self.empty) {
            let _ = write!(out, "<p class=\"empty\">{}</p></figure>", escape(why));
            return out;
        }
        let n = self.categories.len().max(1);
        let top_value = if self.percent {
            1.0
        } else if self.stacked {
            (0..n)
                .map(|i| {
                    self.series
                        .iter()
                        .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                        .sum::<f64>()
                })
                .fold(0.0, f64::max)
        } else {
            self.series
                .iter()
                .flat_map(|s| s.values.iter().copied())
                .fold(0.0, f64::max)
        };
        let y_max = if self.percent { 1.0 } else { nice(top_value) };
        let plot_w = W - LEFT - RIGHT;
        let plot_h = H - TOP - BOTTOM;
        let y = |v: f64| TOP + plot_h * (1.0 - (v / y_max).clamp(0.0, 1.0));
        let _ = write!(
            out,
            "<svg class=\"plot\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\">",
            escape(&self.title)
        );
        // Axis and grid.
        for i in 0..=4 {
            let v = y_max * f64::from(i) / 4.0;
            let yy = y(v);
            let label = if self.percent {
                format!("{:.0}%", v * 100.0)
            } else {
                number(v)
            };
            let _ = write!(
                out,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
                 <text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
                W - RIGHT,
                LEFT - 6.0,
                yy + 4.0
            );
        }
        let _ = write!(
            out,
            "<text class=\"axis\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            TOP + plot_h / 2.0,
            escape(&self.y_label)
        );
        let _ = write!(
            out,
            "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            LEFT + plot_w / 2.0,
            H - 6.0,
            escape(&self.x_label)
        );
        // Bars.
        let slot = plot_w / n as f64;
        let groups = if self.stacked {
            1
        } else {
            self.series.len().max(1)
        };
        // Bars at most 80 px wide, centred in their slot (one source is not a wall of colour).
        let bar_w = (slot * 0.8 / groups as f64).clamp(1.0, 80.0);
        let rotate = n > 8;
        for (i, cat) in self.categories.iter().enumerate() {
            let centre = LEFT + slot * (i as f64 + 0.5);
            let x0 = centre - bar_w * groups as f64 / 2.0;
            let mut stack = 0.0;
            for (j, s) in self.series.iter().enumerate() {
                let v = s.values.get(i).copied().unwrap_or(0.0);
                let (x, base) = if self.stacked {
                    (x0, stack)
                } else {
                    (x0 + bar_w * j as f64, 0.0)
                };
                let (top, bottom) = (y(base + v), y(base));
                let shown = if self.percent {
                    format!("{:.1}%", v * 100.0)
                } else {
                    number(v)
                };
                let _ = write!(
                    out,
                    "<rect class=\"bar\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}: {shown}</title></rect>",
                    (bottom - top).max(0.0),
                    s.color,
                    escape(cat),
                    escape(&s.name)
                );
                stack += v;
            }
            if let Some(note) = self.notes.get(i).filter(|n| !n.is_empty()) {
                let top = if self.stacked {
                    y(stack)
                } else {
                    self.series
                        .iter()
                        .map(|s| y(s.values.get(i).copied().unwrap_or(0.0)))
                        .fold(H, f64::min)
                };
                let _ = write!(
                    out,
                    "<text class=\"note\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    centre,
                    top - 4.0,
                    escape(note)
                );
            }
            let cx = centre;
            let cy = TOP + plot_h + 14.0;
            if rotate {
                let _ = write!(
                    out,
                    "<text class=\"tick\" transform=\"translate({cx:.1} {cy:.1}) rotate(-40)\" text-anchor=\"end\">{}</text>",
                    escape(cat)
                );
            } else {
                let _ = write!(
                    out,
                    "<text class=\"tick\" x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\">{}</text>",
                    escape(cat)
                );
            }
        }
        // Legend.
        if self.series.len() > 1 {
            let mut lx = LEFT + 4.0;
            for s in &self.series {
                let _ = write!(
                    out,
                    "<rect x=\"{lx:.1}\" y=\"6\" width=\"10\" height=\"10\" fill=\"{}\"/>\
                     <text class=\"legend\" x=\"{:.1}\" y=\"15\">{}</text>",
                    s.color,
                    lx + 14.0,
                    escape(&s.name)
                );
                lx += 24.0 + 7.0 * s.name.chars().count() as f64;
            }
        }
        out.push_str("</svg></figure>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_to_readable_numbers() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(13.0), 20.0);
        assert_eq!(nice(420.0), 500.0);
        assert_eq!(nice(1000.0), 1000.0);
    }

    #[test]
    fn a_chart_draws_one_bar_per_value_and_escapes_labels() {
        let b = Bars {
            title: "a <b>".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            categories: vec!["p&q".into(), "r".into()],
            series: vec![
                Series {
                    name: "one".into(),
                    color: "#000",
                    values: vec![1.0, 2.0],
                },
                Series {
                    name: "two".into(),
                    color: "#111",
                    values: vec![3.0, 0.0],
                },
            ],
            stacked: true,
            percent: false,
            notes: vec![],
            empty: None,
        };
        let svg = b.svg();
        assert_eq!(svg.matches("class=\"bar\"").count(), 4);
        assert!(svg.contains("a &lt;b&gt;") && svg.contains("p&amp;q"));
        assert!(!svg.contains("<b>"));
    }
}
