//! `startctl grade`: re-verify responses produced anywhere.

use crate::runtime;
use crate::sandbox_arg::{start_or_warn, Backend};
use crate::Outcome;
use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{json, Value};
use start_grader::Grader;
use start_schemas::problem::Problem;
use start_schemas::rows::{json_type_name, read_rows, Diagnostic, ReadOptions};
use start_schemas::validate::Checker;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Arguments of `startctl grade`.
#[derive(clap::Args)]
pub struct GradeArgs {
    /// Problem files (JSONL or Parquet).
    #[arg(long, required = true)]
    problems: Vec<PathBuf>,
    /// Responses: JSONL or Parquet rows with `problem_id`, `response` and, for choice problems
    /// shown in another order, `choice_permutation`.
    #[arg(long)]
    responses: PathBuf,
    /// Write one verdict a row here (JSONL), in input order.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Sandbox for code tests and the sympy fallback.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    /// Responses graded at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// One response row, checked.
struct Row {
    location: String,
    problem: Arc<Problem>,
    response: String,
    permutation: Option<Vec<u32>>,
}

fn parse_row(
    value: &Value,
    location: &start_schemas::rows::Location,
    problems: &HashMap<String, Arc<Problem>>,
) -> Result<Row, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut text = |field: &str| match value.get(field) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errors.push(Diagnostic::new(
                location.clone(),
                field,
                format!("expected a string, got {}", json_type_name(other)),
            ));
            None
        }
        None => {
            errors.push(Diagnostic::new(location.clone(), field, "missing"));
            None
        }
    };
    let id = text("problem_id");
    let response = text("response");
    let problem = id.as_ref().and_then(|id| {
        let found = problems.get(id).cloned();
        if found.is_none() {
            errors.push(Diagnostic::new(
                location.clone(),
                "problem_id",
                format!("{id:?} is in none of the problem files"),
            ));
        }
        found
    });
    let permutation = match value.get("choice_permutation") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let p: Option<Vec<u32>> = items.iter().map(|v| v.as_u64().map(|x| x as u32)).collect();
            if p.is_none() {
                errors.push(Diagnostic::new(
                    location.clone(),
                    "choice_permutation",
                    "expected a list of option indices",
                ));
            }
            p
        }
        Some(other) => {
            errors.push(Diagnostic::new(
                location.clone(),
                "choice_permutation",
                format!("expected a list, got {}", json_type_name(other)),
            ));
            None
        }
    };
    match (problem, response) {
        (Some(problem), Some(response)) if errors.is_empty() => Ok(Row {
            location: location.to_string(),
            problem,
            response,
            permutation,
        }),
        _ => Err(errors),
    }
}

/// Runs `startctl grade`.
pub fn run(args: GradeArgs) -> anyhow::Result<Outcome> {
    runtime()?.block_on(grade(args))
}

async fn grade(args: GradeArgs) -> anyhow::Result<Outcome> {
    let mut checker = Checker::default();
    let mut problems = HashMap::new();
    let mut errors = 0u64;
    for file in &args.problems {
        checker.check_file(file, &mut |d| eprintln!("{d}"), &mut |p: Problem| {
            problems.insert(p.id.to_string(), Arc::new(p));
        });
    }
    errors += checker.errors;
    let mut rows = Vec::new();
    match read_rows(&args.responses, &ReadOptions::default()) {
        Err(d) => {
            eprintln!("{d}");
            errors += 1;
        }
        Ok(items) => {
            for item in items {
                match item
                    .value
                    .map_err(|d| vec![d])
                    .and_then(|v| parse_row(&v, &item.location, &problems))
                {
                    Ok(row) => rows.push(row),
                    Err(diags) => {
                        for d in diags {
                            eprintln!("{d}");
                            errors += 1;
                        }
                    }
                }
            }
        }
    }
    let sandbox = start_or_warn(
        args.backend,
        "code problems are graded wrong and math stops before the sympy fallback",
    )
    .await;
    let grader = Arc::new(Grader::new(sandbox.clone()));
    let grades: Vec<_> = futures_util::stream::iter(rows.iter().map(|row| {
        let grader = grader.clone();
        async move {
            grader
                .grade(&row.problem, &row.response, row.permutation.as_deref())
                .await
        }
    }))
    .buffered(args.concurrency.max(1))
    .collect()
    .await;
    if let Some(sb) = &sandbox {
        sb.shutdown().await;
    }

    let mut out = match &args.out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let mut table: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for (row, g) in rows.iter().zip(&grades) {
        let cell = table
            .entry((row.problem.source.clone(), row.problem.kind().to_string()))
            .or_default();
        cell.0 += 1;
        cell.1 += u64::from(g.correct == Some(true));
        if let Some(w) = out.as_mut() {
            let line = json!({
                "location": row.location,
                "problem_id": row.problem.id.as_str(),
                "correct": g.correct,
                "score": g.score,
                "final_answer": g.final_answer,
                "detail": g.detail,
            });
            writeln!(w, "{line}")?;
        }
    }
    if let Some(mut w) = out {
        w.flush()?;
    }
    println!(
        "{:<16} {:<7} {:>8} {:>8} {:>9}",
        "source", "kind", "graded", "correct", "accuracy"
    );
    let (mut n, mut c) = (0, 0);
    for ((source, kind), (graded, correct)) in &table {
        println!(
            "{source:<16} {kind:<7} {graded:>8} {correct:>8} {:>8.1}%",
            100.0 * *correct as f64 / *graded as f64
        );
        n += graded;
        c += correct;
    }
    if n > 0 {
        println!(
            "{:<16} {:<7} {n:>8} {c:>8} {:>8.1}%",
            "all",
            "",
            100.0 * c as f64 / n as f64
        );
    }
    println!("{n} responses graded, {errors} errors");
    Ok(if errors == 0 {
        Outcome::Ok
    } else {
        Outcome::InvalidInput
    })
}
