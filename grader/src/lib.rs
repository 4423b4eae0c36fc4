//! start-grader: judges a response against its problem.
//!
//! - math ([`math`]): the last `\boxed{}` (or "the answer is ..."), LaTeX normalised, compared as
//!   strings, exact rationals, decimals within a tolerance, ordered tuples and intervals,
//!   unordered sets, then sympy in the sandbox with a time-out for what is still undecided;
//! - multiple choice ([`choice`]): the chosen letter, mapped back through the option order the
//!   model was shown;
//! - code ([`code`]): the final python block, run against stdin/stdout cases or the check
//!   program in the sandbox, with a verdict per test;
//! - judge prompts ([`judge`]): a judge model's verdict on a code block, parsed, never graded;
//! - Hint-RFT selection ([`rft`]): which graded trajectories become SFT data.

pub mod choice;
pub mod code;
pub mod judge;
pub mod math;
pub mod rft;

use serde_json::json;
use start_sandbox::{ExecRequest, Sandbox, SandboxFile};
use start_schemas::problem::{choice_letter, Problem, Target};
use std::sync::Arc;
use std::time::Duration;

/// The verdict on one response.
#[derive(Clone, Debug, PartialEq)]
pub struct Grade {
    /// Whether it is right; `None` when the grader could not decide (the symbolic fallback
    /// timed out or could not read the answer), which is recorded as unknown, not as wrong.
    pub correct: Option<bool>,
    /// Partial credit in [0, 1]: the share of tests passed for code, else 0 or 1.
    pub score: f32,
    /// The answer extracted from the response, as written there.
    pub final_answer: Option<String>,
    /// How it was judged, as JSON (method, normalised forms, per-test verdicts).
    pub detail: serde_json::Value,
}

/// Grades responses; holds the sandbox used by code problems and the sympy fallback.
pub struct Grader {
    sandbox: Option<Arc<Sandbox>>,
    /// Time-out of one sympy equivalence check.
    pub sympy_timeout: Duration,
}

impl Grader {
    /// A grader; without a sandbox, code problems are graded wrong with a reason and math
    /// stops before sympy.
    pub fn new(sandbox: Option<Arc<Sandbox>>) -> Self {
        Self {
            sandbox,
            sympy_timeout: Duration::from_secs(10),
        }
    }

    /// Grades `response` to `problem`. `permutation` is the option order shown to the model
    /// for choice problems (`shown[i]` = original index), `None` for the original order.
    pub async fn grade(
        &self,
        problem: &Problem,
        response: &str,
        permutation: Option<&[u32]>,
    ) -> Grade {
        match &problem.target {
            Target::Math {
                answer,
                also_accepted,
            } => {
                let mut grade = self.grade_math(answer, response).await;
                // The source accepts other answers too: right when any of them matches.
                for other in also_accepted {
                    if grade.correct == Some(true) {
                        break;
                    }
                    let alt = self.grade_math(other, response).await;
                    if alt.correct == Some(true)
                        || (alt.correct.is_none() && grade.correct == Some(false))
                    {
                        grade = alt;
                    }
                }
                grade
            }
            Target::Choice {
                choices,
                answer_index,
            } => grade_choice(choices.len(), *answer_index, response, permutation),
            Target::Code { tests } => {
                self.grade_code(tests, &sandbox_files(problem), response)
                    .await
            }
            Target::Judge => judge::grade(response),
        }
    }

    async fn grade_math(&self, gold: &str, response: &str) -> Grade {
        let verdict = math::verify(gold, response);
        let Some(pred) = verdict.pred.clone() else {
            return Grade {
                correct: Some(false),
                score: 0.0,
                final_answer: None,
                detail: json!({"method": "none", "reason": "no final answer found"}),
            };
        };
        let (method, correct) = match verdict.outcome {
            math::Cmp::Equal(m) => (m.to_string(), Some(true)),
            math::Cmp::Different => ("compared".to_string(), Some(false)),
            math::Cmp::Unknown => match self.sympy_equal(gold, &pred).await {
                Some(eq) => ("sympy".to_string(), Some(eq)),
                None => ("unknown".to_string(), None),
            },
        };
        Grade {
            correct,
            score: if correct == Some(true) { 1.0 } else { 0.0 },
            detail: json!({
                "method": method,
                "gold": verdict.gold,
                "pred": pred,
            }),
            final_answer: Some(pred),
        }
    }

    /// Symbolic equivalence in the sandbox; `None` when sympy cannot decide in time.
    pub async fn sympy_equal(&self, gold: &str, pred: &str) -> Option<bool> {
        let sandbox = self.sandbox.as_ref()?;
        let (g, p) = (math::latex_to_sympy(gold), math::latex_to_sympy(pred));
        let code = format!(
            r#"import sympy
from sympy.parsing.sympy_parser import parse_expr, standard_transformations, implicit_multiplication_application, convert_xor
T = standard_transformations + (implicit_multiplication_application, convert_xor)
a = parse_expr({g:?}, transformations=T)
b = parse_expr({p:?}, transformations=T)
try:
    same = sympy.simplify(a - b) == 0
except Exception:
    same = False
if not same:
    try:
        x, y = complex(sympy.N(a, 30)), complex(sympy.N(b, 30))
        same = abs(x - y) <= 1e-6 * max(1.0, abs(x))
    except Exception:
        pass
print("EQUAL" if same else "DIFFERENT")
"#
        );
        let request = ExecRequest {
            timeout: self.sympy_timeout,
            ..ExecRequest::new(code)
        };
        let result = sandbox.execute(request).await.ok()?;
        match result.stdout.trim() {
            "EQUAL" => Some(true),
            "DIFFERENT" => Some(false),
            _ => None,
        }
    }

    async fn grade_code(
        &self,
        tests: &start_schemas::problem::CodeTests,
        files: &[SandboxFile],
        response: &str,
    ) -> Grade {
        let Some(program) = code::final_program(response) else {
            return Grade {
                correct: Some(false),
                score: 0.0,
                final_answer: None,
                detail: json!({"method": "none", "reason": "no code block found"}),
            };
        };
        let Some(sandbox) = &self.sandbox else {
            return Grade {
                correct: Some(false),
                score: 0.0,
                final_answer: Some(program),
                detail: json!({"method": "none", "reason": "no sandbox to run the tests"}),
            };
        };
        let verdicts = code::run_tests(sandbox, &program, tests, files).await;
        let passed = verdicts.iter().filter(|v| v.passed).count();
        let total = verdicts.len().max(1);
        let count = |public: bool, pass: bool| {
            verdicts
                .iter()
                .filter(|v| v.public == public && (!pass || v.passed))
                .count()
        };
        // A test the judge itself could not run (the sandbox or the checker failed) says
        // nothing about the program: unless another test already failed, the grade is unknown.
        let judge_failed = verdicts
            .iter()
            .any(|v| v.status == code::Status::JudgeError);
        let model_failed = verdicts
            .iter()
            .any(|v| !v.passed && v.status != code::Status::JudgeError);
        let correct = if model_failed {
            Some(false)
        } else if judge_failed || verdicts.is_empty() {
            None
        } else {
            Some(true)
        };
        Grade {
            correct,
            score: passed as f32 / total as f32,
            final_answer: Some(program),
            detail: json!({
                "method": "tests",
                "passed": passed,
                "total": verdicts.len(),
                "public": {"passed": count(true, true), "total": count(true, false)},
                "hidden": {"passed": count(false, true), "total": count(false, false)},
                "tests": verdicts,
            }),
        }
    }
}

/// The files of `problem` as its code sees them in the sandbox: those whose bytes are loaded
/// (a problem whose files were never read gets none, and its code finds them missing).
pub fn sandbox_files(problem: &Problem) -> Vec<SandboxFile> {
    problem
        .files
        .iter()
        .filter_map(|f| {
            Some(SandboxFile {
                name: f.name.clone(),
                sha256: f.sha256.clone(),
                content: f.content.clone()?,
            })
        })
        .collect()
}

/// Grades a choice response; the letter refers to the order shown (`permutation`).
pub fn grade_choice(
    n: usize,
    answer_index: usize,
    response: &str,
    permutation: Option<&[u32]>,
) -> Grade {
    let letter = choice::extract_letter(response, n);
    let chosen = letter.map(|c| {
        let shown = (c as u8 - b'A') as usize;
        permutation
            .and_then(|p| p.get(shown).map(|&i| i as usize))
            .unwrap_or(shown)
    });
    let correct = chosen == Some(answer_index);
    Grade {
        correct: Some(correct),
        score: if correct { 1.0 } else { 0.0 },
        final_answer: letter.map(|c| c.to_string()),
        detail: json!({
            "method": "choice",
            "chosen_original": chosen.map(choice_letter).map(|c| c.to_string()),
            "expected": choice_letter(answer_index).to_string(),
        }),
    }
}
