//! `startctl judge`: a judge prompt for every code block of a dataset's trajectories, as a
//! problem file a judge job runs (`startctl submit --mode judge`, or `generate --mode judge`).
//!
//! The judge job is a job like any other: the coordinator leases its prompts to workers on
//! either backend, each sample is a vote, each response is parsed into a verdict (sampled again
//! when it does not parse) and the rows land as a start dataset. That dataset is the verdicts:
//! its `problem_id` is `{trajectory_sha256}.b{block}` and its `final_answer` the verdict
//! (`novel significant`), joinable with the judged rows; `startctl export --judge` reads it.

use crate::Outcome;
use anyhow::Context;
use start_dataset::Dataset;
use start_grader::judge::{items, Template};
use start_schemas::trajectory::FinishReason;
use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Which rows' blocks to judge.
#[derive(Clone, Copy, clap::ValueEnum)]
enum RowsArg {
    /// Rows export could keep: correct and finished (the judge rule applies to those only).
    Correct,
    /// Every finished row.
    Finished,
}

/// Arguments of `startctl judge`.
#[derive(clap::Args)]
pub struct JudgeArgs {
    /// The dataset whose code blocks to judge: a directory or an object-store URL.
    #[arg(long = "from")]
    from: String,
    /// The judge prompts, a problem file (JSONL) of kind `judge`.
    #[arg(long, short)]
    out: PathBuf,
    /// A prompt template file instead of the built-in one; placeholders {problem}, {context},
    /// {code}, {output}; it must ask for the two lines `Novelty:` and `Significance:`.
    #[arg(long)]
    template: Option<PathBuf>,
    /// Which rows.
    #[arg(long, value_enum, default_value_t = RowsArg::Correct)]
    rows: RowsArg,
    /// Source recorded on every prompt.
    #[arg(long, default_value = "judge")]
    source: String,
}

/// Runs `startctl judge`.
pub fn run(args: JudgeArgs) -> anyhow::Result<Outcome> {
    crate::runtime()?.block_on(judge(args))
}

async fn judge(args: JudgeArgs) -> anyhow::Result<Outcome> {
    let template = match &args.template {
        None => Template::builtin(),
        Some(path) => Template::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        )
        .with_context(|| path.display().to_string())?,
    };
    let dataset = Dataset::open_at(&args.from).await?;
    let tmp = args.out.with_extension("jsonl.tmp");
    let mut out = BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    let (mut rows, mut judged, mut prompts, mut same_text) = (0u64, 0u64, 0u64, 0u64);
    let mut seen: HashSet<String> = HashSet::new();
    let mut error = None;
    dataset
        .for_each_row(|_, t| {
            rows += 1;
            let take = t.finish_reason == FinishReason::Stop
                && match args.rows {
                    RowsArg::Correct => t.correct == Some(true),
                    RowsArg::Finished => true,
                };
            if !take || error.is_some() {
                return;
            }
            // Rows with the same text have the same blocks: judged once, under one id.
            if !seen.insert(t.trajectory_sha256.clone()) {
                same_text += 1;
                return;
            }
            let blocks = items(&t, &template);
            judged += u64::from(!blocks.is_empty());
            for item in blocks {
                prompts += 1;
                let row = serde_json::json!({
                    "id": item.id,
                    "source": args.source,
                    "kind": "judge",
                    "question": item.prompt,
                });
                if let Err(e) = serde_json::to_writer(&mut out, &row)
                    .map_err(anyhow::Error::from)
                    .and_then(|_| out.write_all(b"\n").map_err(anyhow::Error::from))
                {
                    error = Some(e);
                }
            }
        })
        .await?;
    if let Some(e) = error {
        return Err(e.context(format!("writing {}", tmp.display())));
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    drop(out);
    std::fs::rename(&tmp, &args.out)?;
    println!(
        "{prompts} judge prompts from {judged} rows with code ({rows} rows read, {same_text} \
         repeating another's text) -> {}",
        args.out.display()
    );
    Ok(Outcome::Ok)
}
