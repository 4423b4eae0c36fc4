//! The report built from a dataset on disk: its figures against counts taken from the rows
//! in the test, and a damaged shard refused with its name.

use start_dataset::{commit, Dataset, DatasetLocation, ShardOptions, ShardWriter};
use start_schemas::trajectory::{Mode, ToolOutcome, Trajectory};

/// 48 RFT rows of 12 problems, 4 samples each; problem p has p % 5 correct samples (capped).
fn rows() -> Vec<Trajectory> {
    (0..48u32)
        .map(|i| {
            let mut t = start_tests::trajectory(i);
            let (p, s) = (i / 4, i % 4);
            t.problem_id = format!("p{p:02}");
            t.sample_index = s;
            t.mode = Mode::Rft;
            t.correct = Some(s < p % 5);
            t
        })
        .collect()
}

async fn dataset(dir: &std::path::Path, rows: &[Trajectory]) -> Dataset {
    let loc = DatasetLocation::local(dir).unwrap();
    let mut entries = Vec::new();
    for (k, chunk) in rows.chunks(16).enumerate() {
        let mut w = ShardWriter::create(&format!("s{k}"), &ShardOptions::default()).unwrap();
        w.write(chunk).unwrap();
        entries.push(w.finish().unwrap().stage(&loc).await.unwrap());
    }
    commit(&loc, entries, None).await.unwrap();
    Dataset::open(loc).await.unwrap()
}

/// The text of the SVG `<title>` that `label` starts (a bar's tooltip: "category: series: value").
fn bar(html: &str, label: &str) -> String {
    let at = html
        .find(&format!("<title>{label}"))
        .unwrap_or_else(|| panic!("no bar {label:?}"));
    let end = html[at..].find("</title>").unwrap();
    html[at + "<title>".len()..at + end].to_string()
}

#[tokio::test]
async fn the_reports_figures_are_the_rows_counts() {
    let dir = tempfile::tempdir().unwrap();
    let rows = rows();
    let ds = dataset(dir.path(), &rows).await;
    let report = start_report::build(&ds, &start_report::Options::default())
        .await
        .unwrap();
    assert_eq!(report.rows, 48);
    assert_eq!(report.sampled, 48);
    let html = &report.html;

    // pass@1 is the share of correct samples, averaged over problems.
    let mut by_problem = std::collections::BTreeMap::<&str, (u32, u32)>::new();
    for t in &rows {
        let e = by_problem.entry(&t.problem_id).or_default();
        e.0 += 1;
        e.1 += u32::from(t.correct == Some(true));
    }
    let pass1 = by_problem
        .values()
        .map(|(n, c)| f64::from(*c) / f64::from(*n))
        .sum::<f64>()
        / by_problem.len() as f64;
    assert_eq!(
        bar(html, "1: pass@k"),
        format!("1: pass@k: {:.1}%", pass1 * 100.0)
    );
    // pass@4 over 4 samples: the share of problems with any correct sample.
    let solved = by_problem.values().filter(|(_, c)| *c > 0).count();
    assert_eq!(
        bar(html, "4: pass@k"),
        format!(
            "4: pass@k: {:.1}%",
            solved as f64 * 100.0 / by_problem.len() as f64
        )
    );
    assert!(html.contains(&format!(
        "Problems no sample solved ({})",
        by_problem.len() - solved
    )));

    // Tool-call outcomes per source, as the rows say.
    for source in ["aime", "gpqa", "livecodebench"] {
        for o in ToolOutcome::ALL {
            let n = rows
                .iter()
                .filter(|t| t.source == source)
                .flat_map(|t| &t.tool_calls)
                .filter(|c| c.outcome() == o)
                .count();
            let label = format!("{source}: {}", o.as_str());
            if rows
                .iter()
                .any(|t| t.source == source && !t.tool_calls.is_empty())
            {
                assert_eq!(bar(html, &label), format!("{label}: {n}"));
            }
        }
    }
    // What an export keeps: the same selection `startctl export` makes.
    let kept = rows
        .iter()
        .filter(|t| t.correct == Some(true) && t.finish_reason.as_str() == "stop")
        .count();
    assert!(report.selection.kept.len() <= kept);
    assert!(html.contains(&format!(
        "<tr><td>kept</td><td>{}</td>",
        report.selection.kept.len()
    )));
    // Nothing in a row's text can end the embedded script.
    assert_eq!(html.matches("</script>").count(), 2);
}

#[tokio::test]
async fn a_damaged_shard_is_refused_by_name_and_no_report_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), &rows()).await;
    let shard = &ds.manifest.shards[1];
    let path = dir.path().join(&shard.path);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let e = match start_report::build(&ds, &start_report::Options::default()).await {
        Ok(_) => panic!("a damaged shard made a report"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains(&shard.path) && e.contains("sha256"), "{e}");
    assert!(!dir.path().join(start_report::REPORT_FILE).exists());
}
