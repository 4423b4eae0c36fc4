//! `startctl report`: the dataset's HTML report ([`start_report`]), beside the dataset or in
//! a file of the caller's choosing. `startctl run` writes the same report beside its dataset.

use crate::Outcome;
use start_dataset::Dataset;
use std::path::PathBuf;

/// Arguments of `startctl report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// The dataset: a directory or an object-store URL (`s3://bucket/prefix`, ...).
    dataset: String,
    /// Where to write the report (a local file); by default beside the dataset, as
    /// `DATASET/report.html` (an object in its bucket for a remote dataset).
    #[arg(short = 'o', long)]
    out: Option<PathBuf>,
    /// Trajectories the viewer embeds at most (aggregates are over every row regardless).
    #[arg(long, default_value_t = start_report::Options::default().sample_rows)]
    sample: usize,
}

/// Runs `startctl report`.
pub fn run(args: ReportArgs) -> anyhow::Result<Outcome> {
    crate::runtime()?.block_on(async {
        let options = start_report::Options {
            sample_rows: args.sample,
            trigger_check: Some(crate::inspect::trigger_check()),
        };
        println!(
            "{}",
            write(&args.dataset, &options, args.out.as_deref()).await?
        );
        Ok(Outcome::Ok)
    })
}

/// What `startctl run` ends with, from one pass over the dataset at `spec`: its summary (what
/// `startctl inspect` prints) and its report, written beside it. A report that cannot be
/// written is said, not fatal: the job's outcome is the exit code.
pub async fn summary_and_report(spec: &str) -> anyhow::Result<()> {
    let dataset = Dataset::open_at(spec).await?;
    let options = start_report::Options {
        trigger_check: Some(crate::inspect::trigger_check()),
        ..start_report::Options::default()
    };
    let mut report = start_report::build(&dataset, &options).await?;
    crate::inspect::print_summary(&dataset, &mut report.tally).await?;
    match start_report::write_beside(&dataset, &report).await {
        Ok(name) => println!("{}", line(&name, &report)),
        Err(e) => eprintln!("startctl: warning: no report written: {e:#}"),
    }
    Ok(())
}

/// Builds the report of the dataset at `spec` and writes it to `out`, else beside the
/// dataset; returns the line that names it.
async fn write(
    spec: &str,
    options: &start_report::Options,
    out: Option<&std::path::Path>,
) -> anyhow::Result<String> {
    let dataset = Dataset::open_at(spec).await?;
    let report = start_report::build(&dataset, options).await?;
    let name = match out {
        Some(path) => {
            start_report::write_to(path, &report)?;
            path.display().to_string()
        }
        None => start_report::write_beside(&dataset, &report).await?,
    };
    Ok(line(&name, &report))
}

fn line(name: &str, report: &start_report::Report) -> String {
    format!(
        "report: {name} ({} rows, {} in its viewer, {} KiB; open it in a browser)",
        report.rows,
        report.sampled,
        report.html.len().div_ceil(1024)
    )
}
