//! The problem, start's unit of input: one row of a JSONL or Parquet file.
//!
//! Rows are parsed and checked by [`crate::validate`]; this module holds the typed result and
//! its canonical row form. schemas/README.md documents every field.

use crate::attachment::Attachment;
use crate::ids::ProblemId;
use crate::proto;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Which grader judges a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemKind {
    /// Free-form answer compared as mathematics.
    Math,
    /// Multiple choice.
    Choice,
    /// A program run against tests.
    Code,
    /// A judge prompt: shown verbatim, its response parsed as a verdict (judge jobs).
    Judge,
}

impl ProblemKind {
    /// Every kind, in display order.
    pub const ALL: [ProblemKind; 4] = [Self::Math, Self::Choice, Self::Code, Self::Judge];

    /// The name used in files (`math`, `choice`, `code`, `judge`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Math => "math",
            Self::Choice => "choice",
            Self::Code => "code",
            Self::Judge => "judge",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for ProblemKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown kind {s:?}; expected math, choice, code or judge"))
    }
}

/// One stdin/stdout test case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StdioCase {
    /// Written to the program's standard input.
    pub input: String,
    /// Expected standard output (compared with whitespace normalised).
    pub output: String,
    /// Shown to the model as a sample test (filled into the code-debug hint); a hidden case
    /// is only graded. Every case is graded. Left out of the row when false, so the content
    /// hash of a problem without shown cases is what it was before the field existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
}

/// One shown example of a function problem: a call and the value it must give.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallExample {
    /// A Python expression calling the entry point, e.g. `add(2, 3)`.
    pub call: String,
    /// The expected value as a Python expression, e.g. `5`.
    pub expected: String,
}

/// The tests a model is shown for a code problem, to run its code on before it answers.
#[derive(Clone, Debug, PartialEq)]
pub enum ShownTests<'a> {
    /// A stdin/stdout program: the public cases.
    Stdio(Vec<&'a StdioCase>),
    /// A function: the shown calls.
    Function(&'a [CallExample]),
}

/// How a code problem is tested.
#[derive(Clone, Debug, PartialEq)]
pub enum TestStyle {
    /// Run the whole program once per case.
    Stdio {
        /// At least one case.
        cases: Vec<StdioCase>,
    },
    /// HumanEval layout: run `solution + test + check(entry_point)`.
    Check {
        /// Starter code shown to the model; may be empty.
        prompt: String,
        /// Defines `check(candidate)`, raising on a wrong answer.
        test: String,
        /// The expression handed to `check`.
        entry_point: String,
        /// Calls shown to the model with their expected values; the check program is hidden.
        examples: Vec<CallExample>,
    },
}

impl TestStyle {
    /// The tests shown to the model (public cases or examples); empty when none are.
    pub fn shown(&self) -> ShownTests<'_> {
        match self {
            Self::Stdio { cases } => ShownTests::Stdio(cases.iter().filter(|c| c.public).collect()),
            Self::Check { examples, .. } => ShownTests::Function(examples),
        }
    }
}

/// How a program's output is judged against the expected output of a stdin/stdout case.
#[derive(Clone, Debug, PartialEq)]
pub enum Judge {
    /// Token by token (any whitespace between tokens), numbers within a tolerance: what most
    /// contest judges do.
    Tokens {
        /// Absolute and relative tolerance for tokens that are numbers (accepted when within
        /// either).
        float_tolerance: f64,
    },
    /// Line by line, exactly, trailing spaces of each line and trailing empty lines aside.
    Lines,
    /// A checker program, for problems whose answers are not unique: Python defining
    /// `check(input, expected, output) -> bool`.
    Checker {
        /// Its source.
        program: String,
    },
}

/// Default tolerance of numeric tokens.
pub const DEFAULT_FLOAT_TOLERANCE: f64 = 1e-6;

impl Default for Judge {
    fn default() -> Self {
        Self::Tokens {
            float_tolerance: DEFAULT_FLOAT_TOLERANCE,
        }
    }
}

/// The tests of a code problem and the limits of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeTests {
    /// The cases or the check program.
    pub style: TestStyle,
    /// How stdin/stdout output is judged.
    pub judge: Judge,
    /// Wall-clock limit of one run in seconds; the grader's default when absent.
    pub time_limit_s: Option<f64>,
    /// Memory limit of one run in MiB; the grader's default when absent.
    pub memory_limit_mb: Option<u32>,
}

/// What a correct response must match, per kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// The reference answer, LaTeX allowed.
    Math {
        /// As written in the source.
        answer: String,
        /// Other answers the source accepts as correct (an AIME problem whose contest
        /// accepted two); a response matching any is right.
        also_accepted: Vec<String>,
    },
    /// The options and the right one.
    Choice {
        /// Options in their original order.
        choices: Vec<String>,
        /// Zero-based index of the right option.
        answer_index: usize,
    },
    /// The tests a program must pass.
    Code {
        /// Cases or check program.
        tests: CodeTests,
    },
    /// Nothing to compare against: the response is a verdict, parsed by the judge's grader
    /// (`start_grader::judge`).
    Judge,
}

/// A validated problem.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Stable id (given, or the content hash).
    pub id: ProblemId,
    /// Where it comes from, lower case.
    pub source: String,
    /// The question as shown to the model.
    pub question: String,
    /// What a correct response must match.
    pub target: Target,
    /// A reference solution (worked solution or program), if the source has one.
    pub solution: Option<String>,
    /// Free-form metadata carried through to the output.
    pub metadata: Option<Map<String, Value>>,
    /// Files the question is about, shown read-only to every code block of the problem
    /// ([`crate::attachment`]).
    pub files: Vec<Attachment>,
}

/// The letter of a zero-based option index (`0` → `A`).
pub fn choice_letter(index: usize) -> char {
    (b'A' + index as u8) as char
}

/// splitmix64: a tiny, well-mixed generator that gives the same numbers on every platform.
/// Advances `state` and returns the next number; used wherever a seed must decide something
/// reproducibly (option orders, hint placement).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The option order shown to the model for one sample of a choice problem: a permutation of
/// `0..n` (`shown[i]` = original index) drawn from the trajectory's seed, so the same seed
/// always shows the same order and the grader can map the chosen letter back.
pub fn choice_permutation(seed: u64, n: usize) -> Vec<u32> {
    let mut state = seed;
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        order.swap(i, (splitmix64(&mut state) % (i as u64 + 1)) as usize);
    }
    order
}

impl Problem {
    /// The problem's kind.
    pub fn kind(&self) -> ProblemKind {
        match self.target {
            Target::Math { .. } => ProblemKind::Math,
            Target::Choice { .. } => ProblemKind::Choice,
            Target::Code { .. } => ProblemKind::Code,
            Target::Judge => ProblemKind::Judge,
        }
    }

    /// The canonical row: what `startctl import` writes and what [`crate::validate`] reads.
    pub fn to_row(&self) -> Value {
        let mut row = self.content_row();
        let obj = row.as_object_mut().expect("content_row is an object");
        obj.insert("id".into(), json!(self.id.as_str()));
        obj.insert("source".into(), json!(self.source));
        if let Some(solution) = &self.solution {
            obj.insert("solution".into(), json!(solution));
        }
        if let Some(metadata) = &self.metadata {
            obj.insert("metadata".into(), Value::Object(metadata.clone()));
        }
        if !self.files.is_empty() {
            let files: Vec<Value> = self
                .files
                .iter()
                .map(|f| {
                    let mut file = Map::new();
                    match &f.path {
                        Some(path) => {
                            file.insert("path".into(), json!(path));
                            if path.rsplit('/').next() != Some(f.name.as_str()) {
                                file.insert("name".into(), json!(f.name));
                            }
                        }
                        None => {
                            file.insert("name".into(), json!(f.name));
                        }
                    }
                    file.insert("sha256".into(), json!(f.sha256));
                    if let Some(size) = f.size {
                        file.insert("size".into(), json!(size));
                    }
                    Value::Object(file)
                })
                .collect();
            obj.insert("files".into(), Value::Array(files));
        }
        row
    }

    /// The fields that make two problems the same problem: kind, question, target and the
    /// attached files (by name and sha256). Id, source, solution and metadata are left out, so
    /// the same question imported from two sets is caught as a duplicate.
    fn content_row(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("kind".into(), json!(self.kind().as_str()));
        obj.insert("question".into(), json!(self.question));
        if !self.files.is_empty() {
            let files: Vec<Value> = self
                .files
                .iter()
                .map(|f| json!({"name": f.name, "sha256": f.sha256}))
                .collect();
            obj.insert("files".into(), Value::Array(files));
        }
        match &self.target {
            Target::Math {
                answer,
                also_accepted,
            } => {
                obj.insert("answer".into(), json!(answer));
                if !also_accepted.is_empty() {
                    obj.insert("also_accepted".into(), json!(also_accepted));
                }
            }
            Target::Choice {
                choices,
                answer_index,
            } => {
                obj.insert("choices".into(), json!(choices));
                obj.insert(
                    "answer".into(),
                    json!(choice_letter(*answer_index).to_string()),
                );
            }
            Target::Code { tests } => {
                let mut t = Map::new();
                match &tests.style {
                    TestStyle::Stdio { cases } => {
                        t.insert("type".into(), json!("stdio"));
                        t.insert("cases".into(), json!(cases));
                    }
                    TestStyle::Check {
                        prompt,
                        test,
                        entry_point,
                        examples,
                    } => {
                        t.insert("type".into(), json!("check"));
                        t.insert("prompt".into(), json!(prompt));
                        t.insert("test".into(), json!(test));
                        t.insert("entry_point".into(), json!(entry_point));
                        if !examples.is_empty() {
                            t.insert("examples".into(), json!(examples));
                        }
                    }
                }
                match &tests.judge {
                    Judge::Tokens { float_tolerance }
                        if *float_tolerance == DEFAULT_FLOAT_TOLERANCE => {}
                    Judge::Tokens { float_tolerance } => {
                        t.insert("float_tolerance".into(), json!(float_tolerance));
                    }
                    Judge::Lines => {
                        t.insert("compare".into(), json!("lines"));
                    }
                    Judge::Checker { program } => {
                        t.insert("checker".into(), json!(program));
                    }
                }
                if let Some(s) = tests.time_limit_s {
                    t.insert("time_limit_s".into(), json!(s));
                }
                if let Some(m) = tests.memory_limit_mb {
                    t.insert("memory_limit_mb".into(), json!(m));
                }
                obj.insert("tests".into(), Value::Object(t));
            }
            Target::Judge => {}
        }
        Value::Object(obj)
    }

    /// sha256 of the normalised content: the canonical content row (keys sorted, compact) with
    /// the question's whitespace collapsed. The id of a row that has none, and the key of
    /// duplicate-content detection.
    pub fn content_sha256(&self) -> [u8; 32] {
        let mut row = self.content_row();
        row["question"] = json!(normalise_whitespace(&self.question));
        // serde_json's default map is a BTreeMap, so this serialisation is canonical.
        let canonical = serde_json::to_vec(&row).expect("a Value always serialises");
        Sha256::digest(&canonical).into()
    }
}

/// Trims and collapses every run of whitespace to one space.
pub fn normalise_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl From<&Problem> for proto::Problem {
    fn from(p: &Problem) -> Self {
        let mut out = proto::Problem {
            id: p.id.to_string(),
            source: p.source.clone(),
            question: p.question.clone(),
            metadata_json: p
                .metadata
                .as_ref()
                .map(|m| Value::Object(m.clone()).to_string())
                .unwrap_or_default(),
            files: p
                .files
                .iter()
                .map(|f| proto::DataFile {
                    name: f.name.clone(),
                    sha256: f.sha256.clone(),
                    size: f.size.unwrap_or(0),
                    content: f.content.clone().unwrap_or_default(),
                })
                .collect(),
            ..Default::default()
        };
        match &p.target {
            Target::Math {
                answer,
                also_accepted,
            } => {
                out.kind = proto::ProblemKind::Math as i32;
                out.answer = answer.clone();
                out.also_accepted = also_accepted.clone();
            }
            Target::Choice {
                choices,
                answer_index,
            } => {
                out.kind = proto::ProblemKind::Choice as i32;
                out.choices = choices.clone();
                out.choice_answer_index = *answer_index as u32;
            }
            Target::Code { tests } => {
                out.kind = proto::ProblemKind::Code as i32;
                let style = match &tests.style {
                    TestStyle::Stdio { cases } => {
                        proto::code_tests::Style::Stdio(proto::StdioCases {
                            cases: cases
                                .iter()
                                .map(|c| proto::StdioCase {
                                    input: c.input.clone(),
                                    output: c.output.clone(),
                                    public: c.public,
                                })
                                .collect(),
                        })
                    }
                    TestStyle::Check {
                        prompt,
                        test,
                        entry_point,
                        examples,
                    } => proto::code_tests::Style::Check(proto::CheckProgram {
                        prompt: prompt.clone(),
                        test: test.clone(),
                        entry_point: entry_point.clone(),
                        examples: examples
                            .iter()
                            .map(|e| proto::CallExample {
                                call: e.call.clone(),
                                expected: e.expected.clone(),
                            })
                            .collect(),
                    }),
                };
                let (compare, float_tolerance, checker) = match &tests.judge {
                    Judge::Tokens { float_tolerance } => {
                        (String::new(), *float_tolerance, String::new())
                    }
                    Judge::Lines => ("lines".to_string(), 0.0, String::new()),
                    Judge::Checker { program } => (String::new(), 0.0, program.clone()),
                };
                out.tests = Some(proto::CodeTests {
                    compare,
                    float_tolerance,
                    checker,
                    style: Some(style),
                    time_limit_s: tests.time_limit_s.unwrap_or(0.0),
                    memory_limit_mb: tests.memory_limit_mb.unwrap_or(0),
                });
            }
            Target::Judge => out.kind = proto::ProblemKind::Judge as i32,
        }
        out
    }
}

impl proto::Problem {
    /// The row form of a problem received over gRPC, so that it goes through the same checks as
    /// a file row ([`crate::validate::check_row`]): clients are validated like files.
    pub fn to_row(&self) -> Value {
        let mut obj = Map::new();
        if !self.id.is_empty() {
            obj.insert("id".into(), json!(self.id));
        }
        obj.insert("source".into(), json!(self.source));
        obj.insert("question".into(), json!(self.question));
        let kind = proto::ProblemKind::try_from(self.kind).unwrap_or_default();
        match kind {
            proto::ProblemKind::Math => {
                obj.insert("kind".into(), json!("math"));
                obj.insert("answer".into(), json!(self.answer));
                if !self.also_accepted.is_empty() {
                    obj.insert("also_accepted".into(), json!(self.also_accepted));
                }
            }
            proto::ProblemKind::Choice => {
                obj.insert("kind".into(), json!("choice"));
                obj.insert("choices".into(), json!(self.choices));
                obj.insert("answer".into(), json!(self.choice_answer_index));
            }
            proto::ProblemKind::Code => {
                obj.insert("kind".into(), json!("code"));
                if let Some(tests) = &self.tests {
                    let mut t = Map::new();
                    match &tests.style {
                        Some(proto::code_tests::Style::Stdio(s)) => {
                            t.insert("type".into(), json!("stdio"));
                            let cases: Vec<Value> = s
                                .cases
                                .iter()
                                .map(|c| {
                                    let mut case = json!({"input": c.input, "output": c.output});
                                    if c.public {
                                        case["public"] = json!(true);
                                    }
                                    case
                                })
                                .collect();
                            t.insert("cases".into(), Value::Array(cases));
                        }
                        Some(proto::code_tests::Style::Check(c)) => {
                            t.insert("type".into(), json!("check"));
                            t.insert("prompt".into(), json!(c.prompt));
                            t.insert("test".into(), json!(c.test));
                            t.insert("entry_point".into(), json!(c.entry_point));
                            if !c.examples.is_empty() {
                                let examples: Vec<Value> = c
                                    .examples
                                    .iter()
                                    .map(|e| json!({"call": e.call, "expected": e.expected}))
                                    .collect();
                                t.insert("examples".into(), Value::Array(examples));
                            }
                        }
                        None => {}
                    }
                    if !tests.compare.is_empty() {
                        t.insert("compare".into(), json!(tests.compare));
                    }
                    if !tests.checker.is_empty() {
                        t.insert("checker".into(), json!(tests.checker));
                    }
                    if tests.float_tolerance != 0.0
                        && tests.float_tolerance != DEFAULT_FLOAT_TOLERANCE
                    {
                        t.insert("float_tolerance".into(), json!(tests.float_tolerance));
                    }
                    if tests.time_limit_s != 0.0 {
                        t.insert("time_limit_s".into(), json!(tests.time_limit_s));
                    }
                    if tests.memory_limit_mb != 0 {
                        t.insert("memory_limit_mb".into(), json!(tests.memory_limit_mb));
                    }
                    obj.insert("tests".into(), Value::Object(t));
                }
            }
            proto::ProblemKind::Judge => {
                obj.insert("kind".into(), json!("judge"));
            }
            proto::ProblemKind::Unspecified => {
                obj.insert("kind".into(), Value::Null);
            }
        }
        if !self.metadata_json.is_empty() {
            let meta = serde_json::from_str::<Value>(&self.metadata_json)
                .unwrap_or_else(|_| json!(self.metadata_json));
            obj.insert("metadata".into(), meta);
        }
        if !self.files.is_empty() {
            let files: Vec<Value> = self
                .files
                .iter()
                .map(|f| json!({"name": f.name, "sha256": f.sha256, "size": f.size}))
                .collect();
            obj.insert("files".into(), Value::Array(files));
        }
        Value::Object(obj)
    }
}

impl Problem {
    /// Loads the bytes of the files that `wire` (this problem as received) carries inline,
    /// checking each; a file without them is left for the caller to fetch (a job's large
    /// files travel through the dataset store). Each error names the file's field, the
    /// problem and the file.
    pub fn load_inline_files(&mut self, wire: &proto::Problem) -> Vec<(String, String)> {
        let id = self.id.to_string();
        let mut errors = Vec::new();
        for (i, (file, sent)) in self.files.iter_mut().zip(&wire.files).enumerate() {
            if sent.content.is_empty() {
                continue;
            }
            if let Err(e) = file.load(sent.content.clone()) {
                errors.push((
                    format!("files[{i}]"),
                    format!("problem {id:?}: file {}: {e}", file.name),
                ));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Location;
    use crate::validate::check_row;

    #[test]
    fn problems_survive_the_proto_round_trip_through_the_validator() {
        let rows = [
            json!({"id": "m", "source": "math", "kind": "math", "question": "q", "answer": "\\frac{1}{2}",
                   "metadata": {"level": 3}}),
            json!({"id": "c", "source": "gpqa", "kind": "choice", "question": "q", "choices": ["a", "b", "c"], "answer": "C"}),
            json!({"id": "aime-2022-II-8", "source": "aime", "kind": "math", "question": "q", "answer": "80",
                   "also_accepted": ["81"]}),
            json!({"id": "s", "source": "lcb", "kind": "code", "question": "q",
                   "tests": {"type": "stdio", "cases": [{"input": "1\n", "output": "1\n", "public": true}, {"input": "2\n", "output": "2\n"}], "time_limit_s": 2.5, "memory_limit_mb": 128}}),
            json!({"id": "t", "source": "cf", "kind": "code", "question": "q",
                   "tests": {"type": "stdio", "cases": [{"input": "1\n", "output": "1.5\n"}], "float_tolerance": 0.001}}),
            json!({"id": "l", "source": "cf", "kind": "code", "question": "q",
                   "tests": {"type": "stdio", "cases": [{"input": "1\n", "output": "a b\n"}], "compare": "lines"}}),
            json!({"id": "x", "source": "cf", "kind": "code", "question": "q",
                   "tests": {"type": "stdio", "cases": [{"input": "1\n", "output": "2 1\n"}], "checker": "def check(i, e, o):\n    return sorted(o.split()) == sorted(e.split())\n"}}),
            json!({"id": "k", "source": "he", "kind": "code", "question": "q",
                   "tests": {"type": "check", "prompt": "def f():\n", "test": "def check(c): pass", "entry_point": "f",
                             "examples": [{"call": "f()", "expected": "None"}]}}),
        ];
        let here = Location::file("t");
        for row in rows {
            let problem = check_row(&row, &here).unwrap();
            let wire = proto::Problem::from(&problem);
            let back = check_row(&wire.to_row(), &here).unwrap();
            assert_eq!(back, problem);
            assert_eq!(check_row(&problem.to_row(), &here).unwrap(), problem);
        }
    }

    #[test]
    fn choice_permutations_are_permutations_stable_per_seed_and_vary() {
        let a = choice_permutation(42, 4);
        assert_eq!(a, choice_permutation(42, 4));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3]);
        let distinct: std::collections::HashSet<Vec<u32>> =
            (0..64).map(|seed| choice_permutation(seed, 4)).collect();
        assert!(
            distinct.len() > 12,
            "seeds give many orders: {}",
            distinct.len()
        );
        assert_eq!(choice_permutation(7, 1), [0]);
        assert!(choice_permutation(7, 0).is_empty());
    }

    #[test]
    fn a_proto_problem_without_a_kind_is_refused() {
        let wire = proto::Problem {
            source: "math".into(),
            question: "q".into(),
            ..Default::default()
        };
        let errors = check_row(&wire.to_row(), &Location::file("grpc")).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "grpc: kind: missing; this field is required"
        );
    }
}
