//! A job's attached files on their way to the workers: a small one travels inside the units
//! that need it, a larger one is kept once in the job's dataset under `_inputs/<sha256>`
//! ([`start_dataset::inputs`]) and each worker fetches it from there. A file named by a
//! problem but not sent must be kept there already (an earlier job's), or the job is refused.

use start_dataset::{inputs, DatasetLocation};
use start_schemas::problem::Problem;
use std::collections::HashSet;

/// Most missing files named in one refusal.
const MAX_REPORTED: usize = 20;

/// Settles where each attached file of `problems` travels: keeps the larger ones with bytes in
/// `dataset` and drops their bytes from the problems (the units then carry none), and checks
/// that the dataset keeps every file that came without bytes. An error names each problem and
/// file that cannot reach the workers.
pub async fn settle(dataset: &DatasetLocation, problems: &mut [Problem]) -> Result<(), String> {
    // Files the dataset is known to keep, so that a file shared by many problems costs one
    // store call.
    let mut kept: HashSet<String> = HashSet::new();
    let mut missing = Vec::new();
    for problem in problems.iter_mut() {
        let id = problem.id.to_string();
        for (i, file) in problem.files.iter_mut().enumerate() {
            if file.content.is_some() {
                if file.inline() {
                    continue;
                }
                if !kept.contains(&file.sha256) {
                    inputs::keep(dataset, file).await.map_err(|e| {
                        format!(
                            "problem {id:?}: file {}: cannot keep it in the dataset store: {e}",
                            file.name
                        )
                    })?;
                    kept.insert(file.sha256.clone());
                }
                file.content = None;
            } else if !kept.contains(&file.sha256) {
                match inputs::holds(dataset, file).await {
                    Ok(true) => {
                        kept.insert(file.sha256.clone());
                    }
                    Ok(false) => missing.push(format!(
                        "problem {id:?}: files[{i}]: {} (sha256 {}): its bytes were not sent with \
                         the job, and {} keeps no copy",
                        file.name,
                        file.sha256,
                        dataset.name(&file.store_key())
                    )),
                    Err(e) => {
                        return Err(format!(
                            "problem {id:?}: file {}: the dataset store: {e}",
                            file.name
                        ))
                    }
                }
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let more = missing.len().saturating_sub(MAX_REPORTED);
    missing.truncate(MAX_REPORTED);
    if more > 0 {
        missing.push(format!("... and {more} more"));
    }
    Err(missing.join("\n"))
}
