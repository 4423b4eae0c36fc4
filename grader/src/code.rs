//! Code: the program a response gives, run against the problem's tests in the sandbox.

use serde::Serialize;
use start_sandbox::{ExecRequest, Sandbox};
use start_schemas::problem::{CodeTests, TestStyle};
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

/// Output compared with whitespace normalised: tokens split on any whitespace.
pub fn same_output(expected: &str, got: &str) -> bool {
    expected.split_whitespace().eq(got.split_whitespace())
}

/// One test's verdict.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TestVerdict {
    /// Passed.
    pub passed: bool,
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

/// Runs `program` against `tests`; one verdict per test (one for a check program).
pub async fn run_tests(sandbox: &Sandbox, program: &str, tests: &CodeTests) -> Vec<TestVerdict> {
    let timeout = tests
        .time_limit_s
        .map_or(DEFAULT_TIME_LIMIT, Duration::from_secs_f64);
    let memory_mb = tests.memory_limit_mb.unwrap_or(DEFAULT_MEMORY_MB);
    let request = |code: String, stdin: Option<String>| ExecRequest {
        timeout,
        memory_mb,
        stdin,
        max_output_bytes: 64 * 1024,
        ..ExecRequest::new(code)
    };
    let verdict = |result: Result<start_sandbox::ExecResult, start_sandbox::SandboxError>,
                   judge: &dyn Fn(&start_sandbox::ExecResult) -> Option<String>| {
        match result {
            Err(e) => TestVerdict {
                passed: false,
                reason: Some(format!("sandbox error: {e}")),
                duration_ms: 0.0,
            },
            Ok(r) => {
                let reason = if let Some(e) = &r.error {
                    Some(format!("sandbox: {e}"))
                } else if r.timed_out {
                    Some(format!("time limit exceeded ({timeout:?})"))
                } else if r.memory_exceeded {
                    Some(format!("memory limit exceeded ({memory_mb} MiB)"))
                } else if r.exit_code != Some(0) {
                    Some(format!(
                        "exit code {:?}: {}",
                        r.exit_code,
                        excerpt(&r.stderr)
                    ))
                } else {
                    judge(&r)
                };
                TestVerdict {
                    passed: reason.is_none(),
                    reason,
                    duration_ms: r.duration_ms,
                }
            }
        }
    };
    match &tests.style {
        TestStyle::Stdio { cases } => {
            let mut out = Vec::with_capacity(cases.len());
            for case in cases {
                let result = sandbox
                    .execute(request(program.to_string(), Some(case.input.clone())))
                    .await;
                out.push(verdict(result, &|r| {
                    (!same_output(&case.output, &r.stdout)).then(|| {
                        format!(
                            "wrong answer: expected {:?}, got {:?}",
                            excerpt(&case.output),
                            excerpt(&r.stdout)
                        )
                    })
                }));
            }
            out
        }
        TestStyle::Check {
            test, entry_point, ..
        } => {
            let code = format!("{program}\n\n{test}\n\ncheck({entry_point})\n");
            let result = sandbox.execute(request(code, None)).await;
            vec![verdict(result, &|_| None)]
        }
    }
}
