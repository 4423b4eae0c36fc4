//! A code problem's target: its tests (stdio cases, call examples, a judge) and limits.

use super::*;

pub(super) fn check_code(c: &mut RowCheck, obj: &Map<String, Value>) -> Option<Target> {
    c.forbid(obj, "answer", ProblemKind::Code);
    c.forbid(obj, "choices", ProblemKind::Code);
    c.forbid(obj, ALSO_ACCEPTED, ProblemKind::Code);
    let tests = match RowCheck::get(obj, "tests") {
        None => {
            c.error(
                "tests",
                "missing; code problems need stdin/stdout cases or a check program",
            );
            return None;
        }
        Some(Value::Object(t)) => t,
        Some(other) => {
            c.error(
                "tests",
                format!("expected an object, got {}", json_type_name(other)),
            );
            return None;
        }
    };
    let time_limit_s = match RowCheck::get(tests, "time_limit_s") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(s) if s > 0.0 && s <= MAX_TIME_LIMIT_S => Some(s),
            _ => {
                c.error(
                    "tests.time_limit_s",
                    format!("expected seconds in (0, {MAX_TIME_LIMIT_S}], got {v}"),
                );
                None
            }
        },
    };
    let memory_limit_mb = match RowCheck::get(tests, "memory_limit_mb") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(m) if MEMORY_LIMIT_MB.contains(&m) => Some(m as u32),
            _ => {
                c.error(
                    "tests.memory_limit_mb",
                    format!(
                        "expected whole MiB from {} to {}, got {v}",
                        MEMORY_LIMIT_MB.start(),
                        MEMORY_LIMIT_MB.end()
                    ),
                );
                None
            }
        },
    };
    let style = match RowCheck::get(tests, "type").and_then(Value::as_str) {
        Some("stdio") => {
            c.unknown_fields(
                tests,
                &[
                    "type",
                    "cases",
                    "time_limit_s",
                    "memory_limit_mb",
                    "compare",
                    "float_tolerance",
                    "checker",
                ],
                "tests.",
            );
            check_stdio_cases(c, tests)
        }
        Some("check") => {
            c.unknown_fields(
                tests,
                &[
                    "type",
                    "prompt",
                    "test",
                    "entry_point",
                    "examples",
                    "time_limit_s",
                    "memory_limit_mb",
                ],
                "tests.",
            );
            let prompt = RowCheck::get(tests, "prompt")
                .map_or(Some(String::new()), |v| c.string(v, "tests.prompt", false));
            let test = match RowCheck::get(tests, "test") {
                Some(v) => c.string(v, "tests.test", true),
                None => {
                    c.error(
                        "tests.test",
                        "missing; the program that defines check(candidate)",
                    );
                    None
                }
            };
            let entry_point = match RowCheck::get(tests, "entry_point") {
                Some(v) => c.string(v, "tests.entry_point", true),
                None => {
                    c.error(
                        "tests.entry_point",
                        "missing; the function check() is given",
                    );
                    None
                }
            };
            let examples = check_examples(c, tests);
            Some(TestStyle::Check {
                prompt: prompt?,
                test: test?,
                entry_point: entry_point?,
                examples: examples?,
            })
        }
        _ => {
            c.error(
                "tests.type",
                format!(
                    "expected \"stdio\" or \"check\", got {}",
                    tests
                        .get("type")
                        .map_or("nothing".to_string(), |v| v.to_string())
                ),
            );
            None
        }
    };
    let judge = check_judge(c, tests);
    Some(Target::Code {
        tests: CodeTests {
            style: style?,
            judge: judge?,
            time_limit_s,
            memory_limit_mb,
        },
    })
}

/// How a stdin/stdout case's output is judged: `compare` (`tokens`, the default, or
/// `lines`), `float_tolerance` (for tokens), or a `checker` program.
fn check_judge(c: &mut RowCheck, tests: &Map<String, Value>) -> Option<Judge> {
    let before = c.errors.len();
    let compare = match RowCheck::get(tests, "compare") {
        None => None,
        Some(Value::String(m)) if m == "tokens" || m == "lines" => Some(m.as_str()),
        Some(other) => {
            c.error(
                "tests.compare",
                format!("expected \"tokens\" or \"lines\", got {other}"),
            );
            None
        }
    };
    let tolerance = match RowCheck::get(tests, "float_tolerance") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(t) if (0.0..=1.0).contains(&t) => Some(t),
            _ => {
                c.error(
                    "tests.float_tolerance",
                    format!("expected a number in [0, 1], got {v}"),
                );
                None
            }
        },
    };
    let checker = match RowCheck::get(tests, "checker") {
        None => None,
        Some(v) => c.string(v, "tests.checker", true),
    };
    if checker.as_deref().is_some_and(|p| !p.contains("def check")) {
        c.error(
            "tests.checker",
            "must define check(input, expected, output) returning True for an accepted output",
        );
    }
    if checker.is_some() && (compare.is_some() || tolerance.is_some()) {
        c.error(
            "tests.checker",
            "a checker decides alone: leave out compare and float_tolerance",
        );
    }
    if compare == Some("lines") && tolerance.is_some() {
        c.error(
            "tests.float_tolerance",
            "only applies to compare \"tokens\"",
        );
    }
    if c.errors.len() != before {
        return None;
    }
    Some(match (checker, compare) {
        (Some(program), _) => Judge::Checker { program },
        (None, Some("lines")) => Judge::Lines,
        _ => Judge::Tokens {
            float_tolerance: tolerance.unwrap_or(DEFAULT_FLOAT_TOLERANCE),
        },
    })
}

fn check_stdio_cases(c: &mut RowCheck, tests: &Map<String, Value>) -> Option<TestStyle> {
    let items = match RowCheck::get(tests, "cases") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => {
            c.error("tests.cases", "is empty; give at least one case");
            return None;
        }
        Some(other) => {
            c.error(
                "tests.cases",
                format!("expected an array, got {}", json_type_name(other)),
            );
            return None;
        }
        None => {
            c.error("tests.cases", "missing; a list of {input, output} objects");
            return None;
        }
    };
    let mut cases = Vec::with_capacity(items.len());
    let before = c.errors.len();
    for (i, item) in items.iter().enumerate() {
        let field = format!("tests.cases[{i}]");
        let Some(case) = item.as_object() else {
            c.error(
                &field,
                format!("expected an object, got {}", json_type_name(item)),
            );
            continue;
        };
        c.unknown_fields(case, &["input", "output", "public"], &format!("{field}."));
        let public = match case.get("public") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                c.error(
                    &format!("{field}.public"),
                    format!(
                        "expected true or false (is the case shown to the model?), got {}",
                        json_type_name(other)
                    ),
                );
                false
            }
        };
        let mut part = |name: &str| match case.get(name) {
            Some(v) => c.string(v, &format!("{field}.{name}"), false),
            None => {
                c.error(&format!("{field}.{name}"), "missing");
                None
            }
        };
        if let (Some(input), Some(output)) = (part("input"), part("output")) {
            cases.push(StdioCase {
                input,
                output,
                public,
            });
        }
    }
    (c.errors.len() == before).then_some(TestStyle::Stdio { cases })
}

/// The shown examples of a check-style problem: `[{call, expected}]`, optional.
fn check_examples(c: &mut RowCheck, tests: &Map<String, Value>) -> Option<Vec<CallExample>> {
    let items = match RowCheck::get(tests, "examples") {
        None => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            c.error(
                "tests.examples",
                format!(
                    "expected a list of {{call, expected}} objects, got {}",
                    json_type_name(other)
                ),
            );
            return None;
        }
    };
    let before = c.errors.len();
    let mut examples = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("tests.examples[{i}]");
        let Some(example) = item.as_object() else {
            c.error(
                &field,
                format!("expected an object, got {}", json_type_name(item)),
            );
            continue;
        };
        c.unknown_fields(example, &["call", "expected"], &format!("{field}."));
        let mut part = |name: &str| match example.get(name) {
            Some(v) => c.string(v, &format!("{field}.{name}"), true),
            None => {
                c.error(&format!("{field}.{name}"), "missing");
                None
            }
        };
        if let (Some(call), Some(expected)) = (part("call"), part("expected")) {
            examples.push(CallExample { call, expected });
        }
    }
    (c.errors.len() == before).then_some(examples)
}
