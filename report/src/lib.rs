//! The report of a start dataset: one self-contained HTML file (styles, script, plots and a
//! sample of trajectories inlined; nothing fetched when it opens) that shows what a dataset
//! builder asks first: how often the model used the tool and to what effect, where hints
//! landed, which problems it never solves, what an export would keep, and the trajectories
//! themselves, segment by segment.
//!
//! Aggregates run over every row of the manifest's shards in one pass ([`tally`]); the viewer
//! embeds a stratified sample ([`sample`]), so the file stays a few megabytes at most for a
//! dataset of any size. `startctl report` and `startctl run` both call [`build`].

pub mod html;
pub mod page;
pub mod plot;
pub mod sample;
pub mod tally;

use start_dataset::{Dataset, DatasetError};
use start_grader::rft::{select, Policy, Selection};

/// The report's name beside the dataset (`DATASET/report.html`); outside readers never see
/// it (they read `data/*.parquet`, or the card's configs).
pub const REPORT_FILE: &str = "report.html";

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading the dataset failed (the error names the shard or object).
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// Writing the report failed.
    #[error("writing the report to {path}: {source}")]
    Write {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How to build a report.
#[derive(Clone)]
pub struct Options {
    /// Trajectories the viewer embeds at most.
    pub sample_rows: usize,
    /// The hint library's trigger-word rule, to count hints left right after a trigger word.
    pub trigger_check: Option<tally::TriggerCheck>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("sample_rows", &self.sample_rows)
            .field("trigger_check", &self.trigger_check.is_some())
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sample_rows: 300,
            trigger_check: None,
        }
    }
}

/// A built report.
pub struct Report {
    /// The HTML document.
    pub html: String,
    /// Rows it aggregates.
    pub rows: u64,
    /// Rows its viewer shows.
    pub sampled: usize,
    /// What an export with default filters keeps.
    pub selection: Selection,
    /// The counts the report shows.
    pub tally: tally::Tally,
}

/// Builds the report of `dataset`: every shard of its manifest is fetched once, checked
/// against its sha256 and size, and read ([`Dataset::for_each_row`]). The tally is kept on the
/// report, for what else prints it (`startctl run`'s summary).
pub async fn build(dataset: &Dataset, options: &Options) -> Result<Report, ReportError> {
    let mut tally = tally::Tally::with_trigger_check(options.trigger_check.clone());
    tally.reserve(dataset.manifest.rows() as usize);
    let mut sampler = sample::Sampler::new(options.sample_rows);
    dataset
        .for_each_row(|at, t| {
            tally.add(&t, at);
            sampler.offer(&t);
        })
        .await?;
    let features = std::mem::take(&mut tally.features);
    let selection = select(features, &Policy::default());
    let sample = sampler.finish();
    let html = page::Page {
        dataset: &dataset.location().name(""),
        shards: dataset.manifest.shards.len(),
        tally: &tally,
        selection: &selection,
        sample: &sample,
        built_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
    }
    .render();
    Ok(Report {
        html,
        rows: tally.rows,
        sampled: sample.len(),
        selection,
        tally,
    })
}

/// Writes `report` beside `dataset` as [`REPORT_FILE`] (a local file, or an object in the
/// dataset's bucket); returns its name.
pub async fn write_beside(dataset: &Dataset, report: &Report) -> Result<String, ReportError> {
    let loc = dataset.location();
    loc.put(REPORT_FILE, report.html.clone().into_bytes())
        .await?;
    Ok(loc.name(REPORT_FILE))
}

/// Writes `report` to the local file `path`.
pub fn write_to(path: &std::path::Path, report: &Report) -> Result<(), ReportError> {
    std::fs::write(path, &report.html).map_err(|source| ReportError::Write {
        path: path.display().to_string(),
        source,
    })
}
