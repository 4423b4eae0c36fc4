//! Code: the program a response gives, run against the problem's tests in the sandbox.

use serde::Serialize;
use start_sandbox::{ExecRequest, Sandbox, SandboxFile};
use start_schemas::problem::{CodeTests, Judge, StdioCase, TestStyle};
use std::time::Duration;

/// Default wall-clock limit of one test run.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(6);
/// Default memory limit of one test run, in MiB.
pub const DEFAULT_MEMORY_MB: u32 = 512;

/// The last fenced python block of a response (or the last fenced block of any language).
pub fn final_program(text: &str) -> Option<String> {
    let mut best: Option<(bool, String)> = None;
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let (lang, body_start) = match after.find('\n') {
            Some(nl) => (after[..nl].trim().to_lowercase(), nl + 1),
            None => break,
        };
        let body = &after[body_start..];
        let Some(end) = body.find("```") else { break };
        let code = body[..end].to_string();
        let python = lang == "python" || lang == "py" || lang == "python3";
        if lang != "output" && (python || best.as_ref().is_none_or(|(p, _)| !p)) {
            best = Some((python, code));
        } else if python {
            best = Some((true, code));
        }
        rest = &body[end + 3..];
    }
    best.map(|(_, code)| code)
}

/// Output compared token by token (split on any whitespace), numbers within `tolerance`,
/// absolute or relative to the expected value: a contest judge's default.
pub fn same_tokens(expected: &str, got: &str, tolerance: f64) -> bool {
    let (mut e, mut g) = (expected.split_whitespace(), got.split_whitespace());
    loop {
        match (e.next(), g.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) => {
                if a == b {
                    continue;
                }
                match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
                        let d = (x - y).abs();
                        if d > tolerance && d > tolerance * x.abs() {
                            return false;
                        }
                    }
                    _ => return false,
                }
            }
            _ => return false,
        }
    }
}

/// Output compared line by line, exactly, but for trailing spaces on each line and trailing
/// empty lines.
pub fn same_lines(expected: &str, got: &str) -> bool {
    fn lines(s: &str) -> Vec<&str> {
        let mut v: Vec<&str> = s.lines().map(str::trim_end).collect();
        while v.last() == Some(&"") {
            v.pop();
        }
        v
    }
    lines(expected) == lines(got)
}

/// A test's outcome, as contest judges name them.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Passed.
    Accepted,
    /// Ran, and the output was wrong.
    WrongAnswer,
    /// Over the time limit.
    TimeLimit,
    /// Over the memory limit.
    MemoryLimit,
    /// Exited with an error.
    RuntimeError,
    /// The sandbox could not run it, or the checker failed: not the program's fault.
    JudgeError,
}

/// One test's verdict.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TestVerdict {
    /// Passed.
    pub passed: bool,
    /// The outcome.
    pub status: Status,
    /// Whether the case is one the model was shown; hidden cases are graded the same.
    pub public: bool,
    /// Why not: wrong answer, time-out, memory, error, with a short excerpt.
    pub reason: Option<String>,
    /// Run time in milliseconds.
    pub duration_ms: f64,
}

fn excerpt(s: &str) -> String {
    let t = s.trim();
    if t.len() <= 300 {
        t.to_string()
    } else {
        let mut end = 300;
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &t[..end])
    }
}

/// What a run ended as before its output is judged: `Ok(stdout)` when it exited cleanly, else
/// its verdict.
fn ran(
    result: Result<start_sandbox::ExecResult, start_sandbox::SandboxError>,
    timeout: Duration,
    memory_mb: u32,
) -> Result<(String, f64), TestVerdict> {
    let fail = |status: Status, reason: String, duration_ms: f64| TestVerdict {
        passed: false,
        status,
        public: false,
        reason: Some(reason),
        duration_ms,
    };
    match result {
        Err(e) => Err(fail(Status::JudgeError, format!("sandbox error: {e}"), 0.0)),
        Ok(r) => {
            if let Some(e) = &r.error {
                Err(fail(
                    Status::JudgeError,
                    format!("sandbox: {e}"),
                    r.duration_ms,
                ))
            } else if r.timed_out {
                Err(fail(
                    Status::TimeLimit,
                    format!("time limit exceeded ({timeout:?})"),
                    r.duration_ms,
                ))
            } else if r.memory_exceeded {
                Err(fail(
                    Status::MemoryLimit,
                    format!("memory limit exceeded ({memory_mb} MiB)"),
                    r.duration_ms,
                ))
            } else if r.exit_code != Some(0) {
                Err(fail(
                    Status::RuntimeError,
                    format!("exit code {:?}: {}", r.exit_code, excerpt(&r.stderr)),
                    r.duration_ms,
                ))
            } else {
                Ok((r.stdout, r.duration_ms))
            }
        }
    }
}

/// What a function task's program runs after, as the sources' own harnesses give it (APPS's and
/// LiveCodeBench's put the typing names and the common standard library in scope, as LeetCode
/// does): a reference solution that writes `List[int]` in a signature without importing it
/// passes there, so it must pass here. Star imports only from modules whose names shadow no
/// builtin (`math`'s `pow` would), and the modules themselves by name.
pub const FUNCTION_PRELUDE: &str = "\
from typing import *
from collections import *
from heapq import *
from bisect import *
from itertools import *
from functools import *
from math import ceil, comb, exp, factorial, floor, gcd, inf, isqrt, log, log2, perm, sqrt
import bisect, collections, copy, functools, heapq, itertools, math, operator, random, re, string, sys
";

/// Python's complaint about a `return` outside any function.
const TOP_LEVEL_RETURN: &str = "SyntaxError: 'return' outside function";

/// `program` run so that a `return` outside any function ends it, as APPS's own harness runs
/// programs (as the body of a function): the syntax tree's top-level returns become an
/// exception caught around the program, their values still evaluated; names stay module
/// globals, so `global` statements keep working. Used only for a program Python refuses with
/// [`TOP_LEVEL_RETURN`], so every other program runs exactly as written.
pub fn with_top_level_return(program: &str) -> String {
    let literal = serde_json::to_string(program).expect("a string serialises");
    format!(
        r#"import ast as _start_ast


class _StartReturn(BaseException):
    pass


class _StartTopLevel(_start_ast.NodeTransformer):
    def _keep(self, node):
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _keep

    def visit_Return(self, node):
        out = []
        if node.value is not None:
            out.append(_start_ast.Expr(value=node.value))
        out.append(_start_ast.Raise(exc=_start_ast.Name(id="_StartReturn", ctx=_start_ast.Load()), cause=None))
        return [_start_ast.copy_location(n, node) for n in out]


_start_tree = _start_ast.fix_missing_locations(_StartTopLevel().visit(_start_ast.parse({literal})))
_start_globals = {{"__name__": "__main__", "__builtins__": __builtins__, "_StartReturn": _StartReturn}}
try:
    exec(compile(_start_tree, "solution.py", "exec"), _start_globals)
except _StartReturn:
    pass
"#
    )
}

/// The checker's wrapper: it reads the case from stdin as JSON and exits 0 for an accepted
/// output, 1 for a wrong one, 2 when the checker itself raised.
fn checker_program(checker: &str) -> String {
    format!(
        "{checker}\n\nimport json as _json, sys as _sys, traceback as _tb\n_case = _json.load(_sys.stdin)\ntry:\n    _ok = check(_case['input'], _case['expected'], _case['output'])\nexcept Exception:\n    _tb.print_exc()\n    _sys.exit(2)\n_sys.exit(0 if _ok else 1)\n"
    )
}

/// Judges a clean run's output against a case.
async fn judge(
    sandbox: &Sandbox,
    tests: &CodeTests,
    case: &StdioCase,
    stdout: &str,
    timeout: Duration,
) -> (Status, Option<String>) {
    let wrong = || {
        Some(format!(
            "wrong answer: expected {:?}, got {:?}",
            excerpt(&case.output),
            excerpt(stdout)
        ))
    };
    match &tests.judge {
        Judge::Tokens { float_tolerance } => {
            if same_tokens(&case.output, stdout, *float_tolerance) {
                (Status::Accepted, None)
            } else {
                (Status::WrongAnswer, wrong())
            }
        }
        Judge::Lines => {
            if same_lines(&case.output, stdout) {
                (Status::Accepted, None)
            } else {
                (Status::WrongAnswer, wrong())
            }
        }
        Judge::Checker { program } => {
            let input =
                serde_json::json!({"input": case.input, "expected": case.output, "output": stdout})
                    .to_string();
            let request = ExecRequest {
                timeout: timeout.max(Duration::from_secs(5)),
                memory_mb: DEFAULT_MEMORY_MB,
                stdin: Some(input),
                max_output_bytes: 16 * 1024,
                ..ExecRequest::new(checker_program(program))
            };
            match sandbox.execute(request).await {
                Ok(r) if r.error.is_none() && !r.timed_out && r.exit_code == Some(0) => {
                    (Status::Accepted, None)
                }
                Ok(r) if r.error.is_none() && !r.timed_out && r.exit_code == Some(1) => (
                    Status::WrongAnswer,
                    wrong().map(|w| format!("{w} (rejected by the checker)")),
                ),
                Ok(r) => (
                    Status::JudgeError,
                    Some(format!(
                        "the checker failed: exit {:?}: {}",
                        r.exit_code,
                        excerpt(&r.stderr)
                    )),
                ),
                Err(e) => (
                    Status::JudgeError,
                    Some(format!("the checker could not run: {e}")),
                ),
            }
        }
    }
}

/// Runs `program` against `tests`; one verdict per test (one for a check program). Each run
/// gets the problem's time and memory limits and its attached `files`; every case is run,
/// shown or hidden.
pub async fn run_tests(
    sandbox: &Sandbox,
    program: &str,
    tests: &CodeTests,
    files: &[SandboxFile],
) -> Vec<TestVerdict> {
    let timeout = tests
        .time_limit_s
        .map_or(DEFAULT_TIME_LIMIT, Duration::from_secs_f64);
    let memory_mb = tests.memory_limit_mb.unwrap_or(DEFAULT_MEMORY_MB);
    let request = |code: String, stdin: Option<String>| ExecRequest {
        timeout,
        memory_mb,
        stdin,
        max_output_bytes: 64 * 1024,
        files: files.to_vec(),
        ..ExecRequest::new(code)
    };
    match &tests.style {
        TestStyle::Stdio { cases } => {
            let mut out = Vec::with_capacity(cases.len());
            let mut program = program.to_string();
            let mut wrapped = false;
            for case in cases {
                let mut result = sandbox
                    .execute(request(program.clone(), Some(case.input.clone())))
                    .await;
                let refused = |r: &Result<start_sandbox::ExecResult, _>| matches!(r, Ok(r) if r.exit_code != Some(0) && r.stderr.contains(TOP_LEVEL_RETURN));
                if !wrapped && refused(&result) {
                    program = with_top_level_return(&program);
                    wrapped = true;
                    result = sandbox
                        .execute(request(program.clone(), Some(case.input.clone())))
                        .await;
                }
                let mut v = match ran(result, timeout, memory_mb) {
                    Err(v) => v,
                    Ok((stdout, duration_ms)) => {
                        let (status, reason) = judge(sandbox, tests, case, &stdout, timeout).await;
                        TestVerdict {
                            passed: status == Status::Accepted,
                            status,
                            public: false,
                            reason,
                            duration_ms,
                        }
                    }
                };
                v.public = case.public;
                out.push(v);
            }
            out
        }
        TestStyle::Check {
            test, entry_point, ..
        } => {
            let code = format!("{FUNCTION_PRELUDE}\n{program}\n\n{test}\n\ncheck({entry_point})\n");
            let result = sandbox.execute(request(code, None)).await;
            vec![match ran(result, timeout, memory_mb) {
                Err(mut v) => {
                    // A failed assertion in the check program is the program's wrong answer.
                    if v.status == Status::RuntimeError
                        && v.reason
                            .as_deref()
                            .is_some_and(|r| r.contains("AssertionError"))
                    {
                        v.status = Status::WrongAnswer;
                    }
                    v
                }
                Ok((_, duration_ms)) => TestVerdict {
                    passed: true,
                    status: Status::Accepted,
                    public: false,
                    reason: None,
                    duration_ms,
                },
            }]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_numbers_within_the_tolerance() {
        assert!(same_tokens("3\n", "3", 1e-6));
        assert!(same_tokens("1 2\n3", "1\n2 3\n", 1e-6));
        assert!(same_tokens("0.333333", "0.3333334", 1e-6));
        assert!(same_tokens("1000000", "1000000.5", 1e-6), "relative");
        assert!(!same_tokens("0.5", "0.501", 1e-6), "off by 1e-3");
        assert!(!same_tokens("1 2", "1 2 3", 1e-6));
        assert!(!same_tokens("YES", "yes", 1e-6));
        assert!(
            same_tokens("0.5", "0.501", 1e-2),
            "a problem's own tolerance"
        );
    }

    /// The rewritten program runs as APPS's harness runs it: a top-level `return` ends it, the
    /// returned expression still evaluated, functions and globals untouched.
    #[test]
    fn a_top_level_return_ends_the_program() {
        let program = "import sys\nG = 1\ndef bump():\n    global G\n    G += 1\n    return G\nn = int(input())\nif n < 0:\n    print('No')\n    return print('bye')\nbump()\nprint('Yes', G)\nif __name__ == '__main__':\n    print('main')\n";
        let run = |stdin: &str| {
            let mut child = std::process::Command::new("python3")
                .arg("-c")
                .arg(with_top_level_return(program))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("python3 runs");
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(run("-1\n"), "No\nbye\n");
        assert_eq!(run("3\n"), "Yes 2\nmain\n");
    }

    #[test]
    fn lines_compare_exactly_but_for_trailing_space() {
        assert!(same_lines("a b\nc\n", "a b  \nc\n\n"));
        assert!(!same_lines("a b\nc", "a  b\nc"));
        assert!(!same_lines("a b\nc", "a b c"));
    }
}
