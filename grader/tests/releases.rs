//! The graders on what the releases ship as right: each reference solution of the
//! release-shaped fixtures (`sources/tests/fixtures`, whose README names the release each
//! mirrors), imported by the real importers, graded in the Docker sandbox. APPS's LeetCode
//! solutions use `List` without importing it and one of its stdin programs returns at top
//! level; both pass under APPS's own harness, so they must pass here. MATH's solutions must be
//! graded right against the answers the importer took from them; an AIME row whose contest
//! accepted two answers accepts either.

use start_grader::Grader;
use start_sandbox::{BackendKind, Sandbox, SandboxConfig};
use start_schemas::problem::Problem;
use start_sources::import::ImportFormat;
use start_sources::importer::{ImportOptions, Importer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sources/tests/fixtures")
        .join(name)
}

/// The problems a fixture imports to; its invalid rows (the AIME CSV has one on purpose) are
/// left out, as `startctl import` leaves them out.
fn import(format: ImportFormat, path: &Path) -> Vec<Problem> {
    let mut importer = Importer::new(ImportOptions {
        format,
        before: None,
    });
    let mut problems = Vec::new();
    importer.file(path, &mut |_| {}, &mut |p| problems.push(p));
    problems
}

async fn grader() -> Grader {
    let config = SandboxConfig {
        backend: BackendKind::Docker,
        pool_size: 2,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config)
        .await
        .unwrap_or_else(|e| panic!("the Docker sandbox is needed (run scripts/setup): {e}"));
    Grader::new(Some(Arc::new(sandbox)))
}

fn python(program: &str) -> String {
    format!("```python\n{program}\n```")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_reference_solutions_pass_as_under_apps_own_harness() {
    let grader = grader().await;
    let problems = import(ImportFormat::Apps, &fixture("APPS/train"));
    assert_eq!(problems.len(), 2);
    for p in &problems {
        let folder = fixture("APPS/train").join(p.id.as_str().trim_start_matches("apps-"));
        let solutions: Vec<String> =
            serde_json::from_str(&std::fs::read_to_string(folder.join("solutions.json")).unwrap())
                .unwrap();
        assert!(!solutions.is_empty());
        for (k, s) in solutions.iter().enumerate() {
            let g = grader.grade(p, &python(s), None).await;
            assert_eq!(
                g.correct,
                Some(true),
                "{} solution {k} fails: {}",
                p.id.as_str(),
                g.detail
            );
        }
        // And a wrong one still fails, through the same wrapping.
        let wrong = solutions[0]
            .replace("return n", "return n + 1")
            .replace("print(sum(A))", "print(sum(A) + 1)");
        let g = grader.grade(p, &python(&wrong), None).await;
        assert_eq!(g.correct, Some(false), "{}: {}", p.id.as_str(), g.detail);
    }
    // A top-level return is wrapped only for the program Python refuses: `exit()` and an
    // uncaught error keep their meaning.
    let stdio = &problems[1];
    let crash = "N = int(input())\nraise ValueError('boom')\n";
    let g = grader.grade(stdio, &python(crash), None).await;
    assert_eq!(
        g.detail["tests"][0]["status"], "runtime_error",
        "{}",
        g.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn humaneval_canonical_solutions_pass() {
    let grader = grader().await;
    for p in import(ImportFormat::Humaneval, &fixture("HumanEval.jsonl.gz")) {
        let solution = p.solution.clone().expect("the canonical solution");
        let g = grader.grade(&p, &python(&solution), None).await;
        assert_eq!(g.correct, Some(true), "{}: {}", p.id.as_str(), g.detail);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn math_solutions_are_right_against_their_own_answers() {
    let grader = grader().await;
    let problems = import(ImportFormat::Math, &fixture("MATH/test"));
    assert_eq!(problems.len(), 8);
    for p in &problems {
        let g = grader
            .grade(p, p.solution.as_deref().expect("a solution"), None)
            .await;
        assert_eq!(g.correct, Some(true), "{}: {}", p.id.as_str(), g.detail);
    }
    // The golds read as what they say: 15000 dollars, minus 50 cents, the ratio 4.
    let by_answer = |a: &str| {
        problems
            .iter()
            .find(|p| p.to_row()["answer"] == a)
            .unwrap_or_else(|| panic!("{a}"))
    };
    for (gold, right, wrong) in [
        (r"\$15,\!000", r"\boxed{15000}", r"\boxed{15}"),
        (r"-\$0.50", r"\boxed{-0.5}", r"\boxed{0.50}"),
        ("4:1", r"\boxed{4}", r"\boxed{1}"),
        (
            "-2, 1",
            r"$x = \boxed{1}$ or $x = \boxed{-2}$",
            r"\boxed{1}",
        ),
    ] {
        let p = by_answer(gold);
        assert_eq!(
            grader.grade(p, right, None).await.correct,
            Some(true),
            "{gold}"
        );
        assert_eq!(
            grader.grade(p, wrong, None).await.correct,
            Some(false),
            "{gold}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aime_row_with_two_accepted_answers_accepts_either() {
    let grader = grader().await;
    let problems = import(ImportFormat::Aime, &fixture("aime-1983-2024.csv"));
    let p = problems
        .iter()
        .find(|p| p.id.as_str() == "aime-2022-II-8")
        .unwrap();
    for (response, correct) in [
        (r"\boxed{080}", true),
        (r"\boxed{81}", true),
        (r"\boxed{82}", false),
    ] {
        let g = grader.grade(p, response, None).await;
        assert_eq!(g.correct, Some(correct), "{response}: {}", g.detail);
    }
}
