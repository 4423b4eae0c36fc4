//! The metric types and their Prometheus text rendering.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A monotonically increasing count.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Adds `d` (may be negative).
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A distribution over fixed upper bounds.
#[derive(Clone)]
pub struct Histogram(Arc<HistogramInner>);

struct HistogramInner {
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    /// Sum in micro-units, so that it stays an atomic integer.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Self(Arc::new(HistogramInner {
            bounds: bounds.to_vec(),
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }))
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let h = &self.0;
        if let Some(i) = h.bounds.iter().position(|b| v <= *b) {
            h.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        h.sum_micros
            .fetch_add((v.max(0.0) * 1e6) as u64, Ordering::Relaxed);
        h.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

struct Family {
    help: String,
    kind: &'static str,
    /// Label value (empty for an unlabelled metric) -> series.
    series: BTreeMap<String, Series>,
    label: Option<String>,
}

/// A set of named metrics rendered together.
#[derive(Clone, Default)]
pub struct Registry {
    families: Arc<Mutex<BTreeMap<String, Family>>>,
}

impl Registry {
    fn get_or_add(
        &self,
        name: &str,
        help: &str,
        kind: &'static str,
        label: Option<(&str, &str)>,
        make: impl FnOnce() -> Series,
    ) -> Series {
        let mut families = self.families.lock().expect("registry lock");
        let family = families.entry(name.to_string()).or_insert_with(|| Family {
            help: help.to_string(),
            kind,
            series: BTreeMap::new(),
            label: label.map(|(k, _)| k.to_string()),
        });
        let key = label.map(|(_, v)| v.to_string()).unwrap_or_default();
        let series = family.series.entry(key).or_insert_with(make);
        match series {
            Series::Counter(c) => Series::Counter(c.clone()),
            Series::Gauge(g) => Series::Gauge(g.clone()),
            Series::Histogram(h) => Series::Histogram(h.clone()),
        }
    }

    /// The counter `name` (created on first use).
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        self.counter_with(name, help, None)
    }

    /// The counter `name{label="value"}`.
    pub fn counter_with(&self, name: &str, help: &str, label: Option<(&str, &str)>) -> Counter {
        match self.get_or_add(name, help, "counter", label, || {
            Series::Counter(Counter::default())
        }) {
            Series::Counter(c) => c,
            _ => panic!("metric {name} registered with another type"),
        }
    }

    /// The gauge `name`.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        match self.get_or_add(
            name,
            help,
            "gauge",
            None,
            || Series::Gauge(Gauge::default()),
        ) {
            Series::Gauge(g) => g,
            _ => panic!("metric {name} registered with another type"),
        }
    }

    /// The histogram `name` with upper bounds `bounds` (ascending).
    pub fn histogram(&self, name: &str, help: &str, bounds: &[f64]) -> Histogram {
        match self.get_or_add(name, help, "histogram", None, || {
            Series::Histogram(Histogram::new(bounds))
        }) {
            Series::Histogram(h) => h,
            _ => panic!("metric {name} registered with another type"),
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let families = self.families.lock().expect("registry lock");
        let mut out = String::new();
        for (name, f) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", f.help);
            let _ = writeln!(out, "# TYPE {name} {}", f.kind);
            for (value, series) in &f.series {
                let labels = match &f.label {
                    Some(k) => format!("{{{k}=\"{}\"}}", value.replace('"', "'")),
                    None => String::new(),
                };
                match series {
                    Series::Counter(c) => {
                        let _ = writeln!(out, "{name}{labels} {}", c.get());
                    }
                    Series::Gauge(g) => {
                        let _ = writeln!(out, "{name}{labels} {}", g.get());
                    }
                    Series::Histogram(h) => {
                        let mut cumulative = 0;
                        for (b, c) in h.0.bounds.iter().zip(&h.0.counts) {
                            cumulative += c.load(Ordering::Relaxed);
                            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
                        }
                        let count = h.0.count.load(Ordering::Relaxed);
                        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
                        let sum = h.0.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                        let _ = writeln!(out, "{name}_sum {sum}");
                        let _ = writeln!(out, "{name}_count {count}");
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_type_in_prometheus_text() {
        let r = Registry::default();
        r.counter("start_units_total", "Units.").add(3);
        r.counter_with("start_errors_total", "Errors.", Some(("type", "backend")))
            .inc();
        r.gauge("start_queue_depth", "Queue.").set(-2);
        let h = r.histogram("start_latency_seconds", "Latency.", &[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let text = r.render();
        assert!(text.contains("# TYPE start_units_total counter\nstart_units_total 3\n"));
        assert!(text.contains("start_errors_total{type=\"backend\"} 1\n"));
        assert!(text.contains("start_queue_depth -2\n"));
        assert!(text.contains("start_latency_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("start_latency_seconds_bucket{le=\"1\"} 2\n"));
        assert!(text.contains("start_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("start_latency_seconds_count 3\n"));
    }
}
