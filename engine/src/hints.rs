//! The hint library: what Hint-infer inserts, where it may go, and the trigger words it
//! replaces.
//!
//! START cuts the model's response at a trigger word ("Wait", "Alternatively") or where its
//! thinking would end, and the hint begins there: the hint replaces the word, it does not
//! follow it. Every built-in hint ends by opening a tool's block (Python, or SQL for a
//! problem with data), so the model's next tokens are code. The code-debug hint is filled
//! per problem with the tests the problem shows, in the template for stdin programs or for
//! functions. A problem with attached data gets the data hints (a SQL query, a pandas look,
//! a plot), those of enabled tools only.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use start_schemas::tool::{ToolName, ToolSet};
use std::collections::BTreeMap;

/// The built-in library, `engine/data/hints.json`.
pub const BUILTIN: &str = include_str!("../data/hints.json");

/// A library of hints by kind.
#[derive(Clone, Debug, Deserialize)]
pub struct HintLibrary {
    /// Words a hint may replace ("Wait", "Alternatively"), matched as whole words.
    pub triggers: Vec<String>,
    /// Chance of a hint at a trigger word, unless the job spec gives its own.
    pub trigger_probability: f64,
    /// Math hints by kind (complex calculation, self-reflection, logic check, alternative
    /// method, general, explore deeply); also used for multiple-choice problems.
    pub math: BTreeMap<String, Vec<String>>,
    /// Code hints by kind (debug), each with a template for stdin programs and for functions.
    pub code: BTreeMap<String, CodeHint>,
    /// Hints for problems with attached data, by kind (sql_query, data_analysis, plot), each
    /// opening the block of the tool it asks for.
    #[serde(default)]
    pub data: BTreeMap<String, Vec<String>>,
    /// How a problem's shown tests are written into a code hint's `{samples}`.
    pub samples: SampleFormat,
    /// Hex sha256 of the library's text, recorded on every row.
    #[serde(skip)]
    pub sha256: String,
}

/// One kind of code hint: templates by the problem's test style, each holding `{samples}`.
#[derive(Clone, Debug, Deserialize)]
pub struct CodeHint {
    /// For programs that read standard input.
    pub stdio: Vec<String>,
    /// For problems that ask for a function.
    pub function: Vec<String>,
}

/// How shown tests are rendered into `{samples}`; values are written as Python literals.
#[derive(Clone, Debug, Deserialize)]
pub struct SampleFormat {
    /// One stdin case: `{n}`, `{input}`, `{output}`.
    pub stdio: String,
    /// One function example: `{call}`, `{expected}`.
    pub function: String,
    /// What `{samples}` becomes when the problem shows no tests.
    pub none: String,
    /// Shown tests written at most.
    pub max: usize,
    /// A shown test whose rendered values are longer than this is left out (a hint that
    /// floods the context helps no one).
    pub max_chars: usize,
}

/// The tests a code problem shows the model, to be filled into the debug hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleTests {
    /// A program reading standard input: `(input, expected output)` of the public cases.
    Stdio(Vec<(String, String)>),
    /// A function: `(call, expected value)` of the shown examples.
    Function(Vec<(String, String)>),
}

/// One chosen hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    /// Its kind, recorded on the hint segment.
    pub kind: String,
    /// Its text, samples filled in.
    pub text: String,
}

impl Hint {
    /// The tool whose block the hint ends by opening: the tokens after it are that tool's
    /// code. `None` for a hint that opens no block.
    pub fn opens(&self) -> Option<ToolName> {
        crate::fence::ends_with_open_fence(&self.text)
    }
}

/// What a hint is picked for: the problem's shown tests (code problems), whether it has
/// attached data, and which tools the job enabled.
#[derive(Clone, Copy, Debug)]
pub struct HintContext<'a> {
    /// A code problem's shown tests, for the debug hint.
    pub tests: Option<&'a SampleTests>,
    /// The problem has attached files: the data hints apply.
    pub data: bool,
    /// The job's tools: a hint that opens another tool's block is never picked.
    pub tools: ToolSet,
}

impl HintContext<'_> {
    /// The same context with other tools.
    pub fn with_tools(self, tools: ToolSet) -> Self {
        Self { tools, ..self }
    }
}

/// Why a library file was refused.
#[derive(Debug, thiserror::Error)]
pub enum HintError {
    /// Not valid JSON or missing fields.
    #[error("hint library: {0}")]
    Parse(#[from] serde_json::Error),
    /// Structurally fine but unusable.
    #[error("hint library: {0}")]
    Invalid(String),
}

impl HintLibrary {
    /// The built-in library.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN).expect("the built-in hint library is valid")
    }

    /// Parses and checks a library.
    pub fn parse(text: &str) -> Result<Self, HintError> {
        let mut lib: HintLibrary = serde_json::from_str(text)?;
        lib.sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        let invalid = |m: String| Err(HintError::Invalid(m));
        if !(0.0..=1.0).contains(&lib.trigger_probability) {
            return invalid(format!(
                "trigger_probability {} is outside [0, 1]",
                lib.trigger_probability
            ));
        }
        if lib.triggers.iter().any(|t| t.trim().is_empty()) {
            return invalid("triggers: a trigger word is empty".into());
        }
        let blank = |v: &[String]| v.is_empty() || v.iter().any(|h| h.trim().is_empty());
        if lib.math.is_empty() || lib.math.values().any(|v| blank(v)) {
            return invalid(
                "math needs at least one kind, each with at least one non-empty hint".into(),
            );
        }
        if lib.code.is_empty()
            || lib
                .code
                .values()
                .any(|c| blank(&c.stdio) || blank(&c.function))
        {
            return invalid(
                "code needs at least one kind, each with non-empty stdio and function hints".into(),
            );
        }
        if let Some((kind, hint)) = lib
            .data
            .iter()
            .flat_map(|(k, v)| v.iter().map(move |h| (k, h)))
            .find(|(_, h)| crate::fence::ends_with_open_fence(h).is_none())
        {
            return invalid(format!(
                "data.{kind}: {hint:?} must end by opening a tool's block (```python or ```sql)"
            ));
        }
        // Longest first, so that "But wait" is found before "Wait" would match its tail.
        lib.triggers.sort_by_key(|t| std::cmp::Reverse(t.len()));
        Ok(lib)
    }

    /// Picks a hint with a random number in [0, 1): a data hint for a problem with attached
    /// files, a code hint filled with the shown tests for a code problem, else a math hint;
    /// always one that opens an enabled tool's block (or none). `None` when no such hint
    /// exists (every tool its kind's hints open is disabled).
    pub fn pick(&self, ctx: &HintContext<'_>, r: f64) -> Option<Hint> {
        // The candidates by reference; only the one drawn is copied and filled in.
        fn usable<'a>(
            kinds: impl Iterator<Item = (&'a String, &'a Vec<String>)>,
            tools: ToolSet,
        ) -> Vec<(&'a String, &'a String)> {
            kinds
                .flat_map(|(k, v)| v.iter().map(move |h| (k, h)))
                .filter(|(_, h)| {
                    crate::fence::ends_with_open_fence(h).is_none_or(|t| tools.contains(t))
                })
                .collect()
        }
        let data = if ctx.data {
            usable(self.data.iter(), ctx.tools)
        } else {
            Vec::new()
        };
        // A code hint is filled with the shown tests; data and math hints are used as written.
        let (all, samples) = match ctx.tests {
            _ if !data.is_empty() => (data, None),
            None => (usable(self.math.iter(), ctx.tools), None),
            Some(tests) => {
                let code = self.code.iter().map(|(k, c)| match tests {
                    SampleTests::Stdio(_) => (k, &c.stdio),
                    SampleTests::Function(_) => (k, &c.function),
                });
                (usable(code, ctx.tools), Some(tests))
            }
        };
        if all.is_empty() {
            return None;
        }
        let (kind, template) = all[((r * all.len() as f64) as usize).min(all.len() - 1)];
        let text = match samples {
            Some(tests) => template.replace("{samples}", &self.render_samples(tests)),
            None => template.clone(),
        };
        Some(Hint {
            kind: kind.clone(),
            text,
        })
    }

    /// The `{samples}` text for a problem's shown tests.
    fn render_samples(&self, tests: &SampleTests) -> String {
        let f = &self.samples;
        let mut out = String::new();
        let mut n = 0;
        let pairs = match tests {
            SampleTests::Stdio(p) | SampleTests::Function(p) => p,
        };
        for (a, b) in pairs {
            if n == f.max {
                break;
            }
            let line = match tests {
                SampleTests::Stdio(_) => {
                    let (input, output) = (py_str(a), py_str(b));
                    if input.len() + output.len() > f.max_chars {
                        continue;
                    }
                    f.stdio
                        .replace("{n}", &(n + 1).to_string())
                        .replace("{input}", &input)
                        .replace("{output}", &output)
                }
                SampleTests::Function(_) => {
                    if a.len() + b.len() > f.max_chars {
                        continue;
                    }
                    f.function.replace("{call}", a).replace("{expected}", b)
                }
            };
            out.push_str(&line);
            n += 1;
        }
        if n == 0 {
            f.none.clone()
        } else {
            out
        }
    }

    /// The trigger word that `before` (the text up to the token just sampled) ends with, when
    /// `next` (that token's bytes) shows the word is over: it starts with neither a letter nor
    /// a digit ("Wait," or "Wait\n", not "Waiting"). The word must start a word too ("await"
    /// is not "Wait"). Deciding one token late is what lets the hint replace the whole word.
    pub fn trigger_before<'a>(&'a self, before: &[u8], next: &[u8]) -> Option<&'a str> {
        let first = *next.first()?;
        if is_word_byte(first) {
            return None;
        }
        self.word_at_end(before)
    }

    /// The trigger word `text` ends with exactly, as a whole word.
    fn word_at_end<'a>(&'a self, text: &[u8]) -> Option<&'a str> {
        self.triggers
            .iter()
            .find(|w| {
                text.ends_with(w.as_bytes())
                    && text[..text.len() - w.len()]
                        .last()
                        .is_none_or(|&b| !is_word_byte(b))
            })
            .map(String::as_str)
    }

    /// The trigger word `text` ends with, as a whole word, trailing whitespace aside: what a
    /// hint must never be left right after ("Wait Wait").
    pub fn ends_with_trigger<'a>(&'a self, text: &str) -> Option<&'a str> {
        self.word_at_end(text.trim_end().as_bytes())
    }
}

/// A byte that can be part of a word: ASCII letters and digits, and every byte of a non-ASCII
/// character (a letter in most scripts).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || b == b'_'
}

/// `s` as a Python string literal (single quotes, escapes for quotes, backslashes and control
/// characters), so that a model can paste a sample test into its code as it is.
pub fn py_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(tests: Option<&SampleTests>) -> HintContext<'_> {
        HintContext {
            tests,
            data: false,
            tools: ToolSet::PYTHON,
        }
    }

    #[test]
    fn the_builtin_library_has_the_papers_six_math_kinds_and_a_debug_hint_that_open_code() {
        let lib = HintLibrary::builtin();
        let kinds: Vec<&str> = lib.math.keys().map(String::as_str).collect();
        assert_eq!(
            kinds,
            [
                "alternative_method",
                "complex_calculation",
                "explore_deeply",
                "general",
                "logic_check",
                "self_reflection"
            ]
        );
        assert!(lib.code.contains_key("debug"));
        assert!(lib
            .math
            .values()
            .flatten()
            .any(|h| h == "Wait, maybe using Python here is a good idea.\n```python\n"));
        for r in [0.0, 0.3, 0.6, 0.99] {
            assert_eq!(
                lib.pick(&ctx(None), r).unwrap().opens(),
                Some(ToolName::Python)
            );
            for tests in [
                SampleTests::Stdio(vec![]),
                SampleTests::Function(vec![("f(1)".into(), "2".into())]),
            ] {
                let hint = lib.pick(&ctx(Some(&tests)), r).unwrap();
                assert_eq!(hint.opens(), Some(ToolName::Python), "{hint:?}");
                assert_eq!(hint.kind, "debug");
                assert!(!hint.text.contains("{samples}"));
            }
        }
        assert_eq!(lib.sha256.len(), 64);
    }

    #[test]
    fn problems_with_data_get_data_hints_of_enabled_tools_only() {
        let lib = HintLibrary::builtin();
        assert_eq!(
            lib.data.keys().map(String::as_str).collect::<Vec<_>>(),
            ["data_analysis", "plot", "sql_query"]
        );
        let data = |tools| HintContext {
            tests: None,
            data: true,
            tools,
        };
        let draws: Vec<Hint> = (0..50)
            .filter_map(|i| lib.pick(&data(ToolSet::all()), f64::from(i) / 50.0))
            .collect();
        assert_eq!(draws.len(), 50);
        assert!(draws.iter().any(|h| h.opens() == Some(ToolName::Sql)));
        assert!(draws.iter().any(|h| h.opens() == Some(ToolName::Python)));
        assert!(
            draws.iter().all(|h| lib.data.contains_key(&h.kind)),
            "{draws:?}"
        );
        for i in 0..50 {
            let h = lib
                .pick(&data(ToolSet::PYTHON), f64::from(i) / 50.0)
                .unwrap();
            assert_eq!(h.opens(), Some(ToolName::Python), "{h:?}");
            let h = lib
                .pick(&data(ToolSet::of([ToolName::Sql])), f64::from(i) / 50.0)
                .unwrap();
            assert_eq!(h.opens(), Some(ToolName::Sql), "{h:?}");
        }
        // No tool enabled: no hint opens anything, so none is picked.
        assert_eq!(lib.pick(&data(ToolSet::NONE), 0.5), None);
        assert_eq!(lib.pick(&ctx(None).with_tools(ToolSet::NONE), 0.5), None);
    }

    #[test]
    fn the_debug_hint_shows_the_problems_tests_in_its_style() {
        let lib = HintLibrary::builtin();
        let stdio = SampleTests::Stdio(vec![
            ("1 2\n".into(), "3\n".into()),
            ("x".repeat(500), "y".into()),
            ("it's\t".into(), "ok".into()),
        ]);
        let hint = lib.pick(&ctx(Some(&stdio)), 0.0).unwrap();
        assert!(hint.text.contains("program"), "{}", hint.text);
        assert!(
            hint.text
                .contains("Sample input 1: '1 2\\n'\nExpected output 1: '3\\n'"),
            "{}",
            hint.text
        );
        assert!(
            hint.text.contains("Sample input 2: 'it\\'s\\t'"),
            "a test too long to show is left out: {}",
            hint.text
        );
        let function = SampleTests::Function(vec![("add(2, 3)".into(), "5".into())]);
        let hint = lib.pick(&ctx(Some(&function)), 0.0).unwrap();
        assert!(hint.text.contains("function"), "{}", hint.text);
        assert!(
            hint.text.contains("\nadd(2, 3) should be 5"),
            "{}",
            hint.text
        );
        let hint = lib
            .pick(&ctx(Some(&SampleTests::Stdio(vec![]))), 0.0)
            .unwrap();
        assert!(hint.text.contains("no sample tests"), "{}", hint.text);
    }

    #[test]
    fn a_trigger_is_a_whole_word_confirmed_by_the_next_token() {
        let lib = HintLibrary::builtin();
        assert_eq!(lib.trigger_before(b"so x = 3. Wait", b","), Some("Wait"));
        assert_eq!(lib.trigger_before(b"so x = 3.\nWait", b"\n"), Some("Wait"));
        assert_eq!(
            lib.trigger_before(b"x = 3. But wait", b","),
            Some("But wait")
        );
        assert_eq!(
            lib.trigger_before(b"so.\nAlternatively", b" we"),
            Some("Alternatively")
        );
        assert_eq!(lib.trigger_before(b"so x = 3. Wait", b"ing"), None);
        assert_eq!(lib.trigger_before(b"I will await", b"."), None);
        assert_eq!(lib.trigger_before(b"so x = 3.", b" Wait"), None);
        assert_eq!(lib.ends_with_trigger("x = 3. Wait\n"), Some("Wait"));
        assert_eq!(lib.ends_with_trigger("I await "), None);
    }

    #[test]
    fn python_literals_escape_what_they_must() {
        assert_eq!(py_str("a'b\\c\n\u{1}é"), "'a\\'b\\\\c\\n\\x01é'");
    }

    #[test]
    fn bad_libraries_are_refused_with_a_reason() {
        assert!(HintLibrary::parse("{").is_err());
        let bad = BUILTIN.replace("0.15", "1.5");
        assert!(HintLibrary::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("outside [0, 1]"));
        let bad = BUILTIN.replace("\"function\": [", "\"function\": [\"\", ");
        assert!(HintLibrary::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("stdio and function"));
        let bad = BUILTIN.replace("\"sql_query\": [", "\"sql_query\": [\"Wait, query it.\", ");
        assert!(HintLibrary::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("data.sql_query"));
    }
}
