//! The grader against labelled cases: math notations, choice phrasings, and code problems
//! whose reference solutions must pass while mutated ones must fail.

use serde_json::Value;
use start_grader::{grade_choice, Grader};
use start_sandbox::{BackendKind, Sandbox, SandboxConfig};
use start_schemas::problem::{Problem, Target};
use start_schemas::rows::Location;
use start_schemas::validate::check_row;
use std::path::Path;
use std::sync::Arc;

fn fixture(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn sandbox() -> Arc<Sandbox> {
    let config = SandboxConfig {
        backend: BackendKind::Docker,
        pool_size: 2,
        ..SandboxConfig::default()
    };
    Arc::new(
        Sandbox::start(config)
            .await
            .unwrap_or_else(|e| panic!("the Docker sandbox is needed (run scripts/setup): {e}")),
    )
}

fn math_problem(gold: &str) -> Problem {
    let row =
        serde_json::json!({"source": "math", "kind": "math", "question": "q", "answer": gold});
    check_row(&row, &Location::file("case")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn math_cases_match_their_labels() {
    let cases = fixture("math_cases.jsonl");
    assert!(cases.len() >= 150, "the table has {} cases", cases.len());
    let sb = sandbox().await;
    let grader = Grader::new(Some(sb.clone()));
    let mut wrong = Vec::new();
    let mut by_method = std::collections::BTreeMap::<String, usize>::new();
    for case in &cases {
        let gold = case["gold"].as_str().unwrap();
        let response = case["response"].as_str().unwrap();
        let want = case["correct"].as_bool().unwrap();
        let grade = grader.grade(&math_problem(gold), response, None).await;
        *by_method
            .entry(grade.detail["method"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        if grade.correct != Some(want) {
            wrong.push(format!(
                "gold {gold:?} response {response:?}: want {want}, got {grade:?}"
            ));
        }
    }
    eprintln!("methods: {by_method:?}");
    assert!(
        wrong.is_empty(),
        "{} of {} cases disagree:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    // Every case is decided in Rust; the sympy fallback (for what the Rust side cannot
    // evaluate) still answers in the sandbox.
    assert_eq!(by_method.get("sympy"), None, "{by_method:?}");
    assert_eq!(
        grader.sympy_equal("x^2 - 1", "(x-1)(x+1)").await,
        Some(true)
    );
    assert_eq!(grader.sympy_equal("x^2", "x^3").await, Some(false));
    sb.shutdown().await;
}

#[test]
fn choice_phrasings_match_their_labels() {
    let mut wrong = Vec::new();
    for case in fixture("choice_cases.jsonl") {
        let n = case["choices"].as_u64().unwrap() as usize;
        let index = case["answer_index"].as_u64().unwrap() as usize;
        let response = case["response"].as_str().unwrap();
        let want = case["correct"].as_bool().unwrap();
        let grade = grade_choice(n, index, response, None);
        if grade.correct != Some(want) {
            wrong.push(format!("{response:?}: want {want}, got {grade:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn choice_letters_map_back_through_the_shown_order() {
    // Shown order C, A, D, B: the model's "B" is original A.
    let shown = [2, 0, 3, 1];
    assert_eq!(
        grade_choice(4, 0, "The answer is B", Some(&shown)).correct,
        Some(true)
    );
    assert_eq!(
        grade_choice(4, 0, "The answer is A", Some(&shown)).correct,
        Some(false)
    );
    let g = grade_choice(4, 1, "\\boxed{D}", Some(&shown));
    assert_eq!(g.correct, Some(true), "{g:?}");
    assert_eq!(g.detail["chosen_original"], "B");
}

fn example_code_problems() -> Vec<Problem> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/problems/code.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| check_row(&serde_json::from_str(l).unwrap(), &Location::file("code")).unwrap())
        .collect()
}

fn as_response(program: &str) -> String {
    format!("Here is my solution.\n\n```python\n{program}```\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_solutions_pass_and_mutants_fail() {
    let problems = example_code_problems();
    assert!(problems.len() >= 10);
    let sb = sandbox().await;
    let grader = Grader::new(Some(sb.clone()));
    for p in &problems {
        let solution = p
            .solution
            .as_deref()
            .expect("examples carry a reference solution");
        let g = grader.grade(p, &as_response(solution), None).await;
        assert!(
            g.correct == Some(true) && g.score == 1.0,
            "{}: reference failed: {:?}",
            p.id,
            g.detail
        );
    }
    let mutations = fixture("code_mutations.jsonl");
    let mut covered = std::collections::HashSet::new();
    for m in &mutations {
        let id = m["id"].as_str().unwrap();
        let p = problems.iter().find(|p| p.id.as_str() == id).unwrap();
        let solution = p.solution.as_deref().unwrap();
        let find = m["find"].as_str().unwrap();
        assert!(
            solution.contains(find),
            "{id}: mutation {find:?} does not apply"
        );
        let mutant = solution.replacen(find, m["replace"].as_str().unwrap(), 1);
        let g = grader.grade(p, &as_response(&mutant), None).await;
        assert_eq!(
            g.correct,
            Some(false),
            "{id}: mutant {mutant:?} passed: {:?}",
            g.detail
        );
        let Target::Code { .. } = &p.target else {
            unreachable!()
        };
        covered.insert(id);
    }
    assert_eq!(covered.len(), problems.len(), "every example has a mutant");
    // The grading detail lists each test's verdict.
    let sum = problems
        .iter()
        .find(|p| p.id.as_str() == "ex-code-sum-two")
        .unwrap();
    let g = grader
        .grade(
            sum,
            &as_response("a, b = map(int, input().split())\nprint(a + b if a > 0 else 0)\n"),
            None,
        )
        .await;
    assert_eq!(g.detail["total"], 3);
    assert_eq!(g.detail["passed"], 2);
    assert!((g.score - 2.0 / 3.0).abs() < 1e-6);
    assert!(g.detail["tests"][1]["reason"]
        .as_str()
        .unwrap()
        .starts_with("wrong answer"));
    let g = grader.grade(sum, "I would print the sum.", None).await;
    assert!(g.correct == Some(false) && g.detail["reason"] == "no code block found");
    sb.shutdown().await;
}

fn stdio_problem(tests: serde_json::Value) -> Problem {
    let row = serde_json::json!({"source": "cf", "kind": "code", "question": "q", "tests": tests});
    check_row(&row, &Location::file("case")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_is_judged_as_contest_judges_do() {
    let sb = sandbox().await;
    let grader = Grader::new(Some(sb.clone()));
    let grade = |p: &Problem, program: &str| {
        let (p, r) = (p.clone(), as_response(program));
        let g = &grader;
        async move { g.grade(&p, &r, None).await }
    };
    // Token-wise, numbers within 1e-6 absolute or relative; a float off by 1e-3 is wrong.
    let third = stdio_problem(serde_json::json!({"type": "stdio",
        "cases": [{"input": "3\n", "output": "0.333333333\n", "public": true}]}));
    assert_eq!(
        grade(&third, "print(1 / int(input()))\n").await.correct,
        Some(true)
    );
    assert_eq!(
        grade(&third, "print('%.3f' % (1 / int(input())))\n")
            .await
            .correct,
        Some(false)
    );
    let loose = stdio_problem(serde_json::json!({"type": "stdio", "float_tolerance": 0.01,
        "cases": [{"input": "3\n", "output": "0.333333333\n"}]}));
    assert_eq!(
        grade(&loose, "print('%.3f' % (1 / int(input())))\n")
            .await
            .correct,
        Some(true)
    );
    // Line-wise on request: the same tokens on other lines are wrong.
    let lines = stdio_problem(serde_json::json!({"type": "stdio", "compare": "lines",
        "cases": [{"input": "", "output": "1 2\n3\n"}]}));
    assert_eq!(
        grade(&lines, "print('1 2')\nprint(3)\n").await.correct,
        Some(true)
    );
    let g = grade(&lines, "print(1)\nprint('2 3')\n").await;
    assert_eq!(g.correct, Some(false));
    assert_eq!(g.detail["tests"][0]["status"], "wrong_answer");
    // A checker for answers that are not unique: any order of the two numbers.
    let checker = "def check(input, expected, output):\n    return sorted(output.split()) == sorted(expected.split())\n";
    let any_order = stdio_problem(serde_json::json!({"type": "stdio", "checker": checker,
        "cases": [{"input": "1 2\n", "output": "1 2\n"}]}));
    assert_eq!(
        grade(&any_order, "print(input()[::-1])\n").await.correct,
        Some(true)
    );
    assert_eq!(
        grade(&any_order, "print('1 3')\n").await.correct,
        Some(false)
    );
    let broken = stdio_problem(
        serde_json::json!({"type": "stdio", "checker": "def check(i, e, o):\n    raise ValueError('bug')\n",
        "cases": [{"input": "1\n", "output": "1\n"}]}),
    );
    let g = grade(&broken, "print(1)\n").await;
    assert_eq!(
        g.correct, None,
        "a checker that fails decides nothing: {:?}",
        g.detail
    );
    assert_eq!(g.detail["tests"][0]["status"], "judge_error");
    // Per-test limits: one case over its time limit, one over its memory limit.
    let limits = stdio_problem(
        serde_json::json!({"type": "stdio", "time_limit_s": 1, "memory_limit_mb": 64,
        "cases": [{"input": "ok\n", "output": "ok\n", "public": true},
                  {"input": "slow\n", "output": "slow\n"},
                  {"input": "big\n", "output": "big\n"}]}),
    );
    let program = "s = input()\nif s == 'slow':\n    while True: pass\nif s == 'big':\n    x = bytearray(512 * 1024 * 1024)\nprint(s)\n";
    let g = grade(&limits, program).await;
    let status: Vec<&str> = (0..3)
        .map(|i| g.detail["tests"][i]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        status,
        ["accepted", "time_limit", "memory_limit"],
        "{:?}",
        g.detail
    );
    assert_eq!(g.correct, Some(false));
    assert!((g.score - 1.0 / 3.0).abs() < 1e-6);
    // Hidden tests are graded: passing the shown one is not enough.
    assert_eq!(
        g.detail["public"],
        serde_json::json!({"passed": 1, "total": 1})
    );
    assert_eq!(
        g.detail["hidden"],
        serde_json::json!({"passed": 0, "total": 2})
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbolic_time_out_is_unknown_not_wrong() {
    let sb = sandbox().await;
    let mut grader = Grader::new(Some(sb.clone()));
    // Neither side evaluates (arcsin outside [-1, 1]), so the Rust side cannot decide and the
    // sympy fallback runs, here with a time-out too short for it to answer. 1 ms, not the 50
    // ms this test had: the fork server's preloaded sympy answers this pair in under 50 ms
    // on an idle machine, which made the old bound a race.
    grader.sympy_timeout = std::time::Duration::from_millis(1);
    let g = grader
        .grade(&math_problem("\\arcsin(2)"), "\\boxed{\\arcsin(3)}", None)
        .await;
    assert_eq!(g.correct, None, "{:?}", g.detail);
    assert_eq!(g.detail["method"], "unknown");
    sb.shutdown().await;
}
