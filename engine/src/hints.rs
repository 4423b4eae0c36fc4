//! The hint library: what Hint-infer inserts, and where.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The built-in library, `engine/data/hints.json`.
pub const BUILTIN: &str = include_str!("../data/hints.json");

/// A library of hints by kind.
#[derive(Clone, Debug, Deserialize)]
pub struct HintLibrary {
    /// Words after which a hint may be inserted ("Wait", "Alternatively").
    pub triggers: Vec<String>,
    /// Chance of a hint after a trigger word.
    pub trigger_probability: f64,
    /// Math hints by kind (complex calculation, self-reflection, logic check, alternative
    /// method, general, explore deeply).
    pub math: BTreeMap<String, Vec<String>>,
    /// Code hints by kind (debug).
    pub code: BTreeMap<String, Vec<String>>,
}

/// One chosen hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    /// Its kind, recorded on the hint segment.
    pub kind: String,
    /// Its text.
    pub text: String,
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
        let lib: HintLibrary = serde_json::from_str(text)?;
        if !(0.0..=1.0).contains(&lib.trigger_probability) {
            return Err(HintError::Invalid(format!(
                "trigger_probability {} is outside [0, 1]",
                lib.trigger_probability
            )));
        }
        for (group, kinds) in [("math", &lib.math), ("code", &lib.code)] {
            if kinds.is_empty()
                || kinds
                    .values()
                    .any(|v| v.is_empty() || v.iter().any(|h| h.trim().is_empty()))
            {
                return Err(HintError::Invalid(format!(
                    "{group} needs at least one kind, each with at least one non-empty hint"
                )));
            }
        }
        Ok(lib)
    }

    /// Picks a hint for a problem kind with a random number in [0, 1).
    pub fn pick(&self, code_problem: bool, r: f64) -> Hint {
        let kinds = if code_problem { &self.code } else { &self.math };
        let all: Vec<(&String, &String)> = kinds
            .iter()
            .flat_map(|(k, v)| v.iter().map(move |h| (k, h)))
            .collect();
        let (kind, text) = all[((r * all.len() as f64) as usize).min(all.len() - 1)];
        Hint {
            kind: kind.clone(),
            text: text.clone(),
        }
    }

    /// Whether `text` (the generation so far) now ends with a trigger word.
    pub fn ends_with_trigger(&self, text: &str) -> bool {
        let t = text.trim_end_matches([',', ' ']);
        self.triggers.iter().any(|w| {
            t.ends_with(w.as_str())
                && t[..t.len() - w.len()]
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_alphanumeric())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_library_has_the_papers_six_math_kinds_and_a_debug_hint() {
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
            .any(|h| h == "Wait, maybe using Python here is a good idea."));
    }

    #[test]
    fn triggers_match_whole_words_only() {
        let lib = HintLibrary::builtin();
        assert!(lib.ends_with_trigger("so x = 3. Wait"));
        assert!(lib.ends_with_trigger("so x = 3.\nAlternatively,"));
        assert!(!lib.ends_with_trigger("I will await"));
        assert!(!lib.ends_with_trigger("so x = 3."));
    }

    #[test]
    fn bad_libraries_are_refused_with_a_reason() {
        assert!(HintLibrary::parse("{").is_err());
        let bad = BUILTIN.replace("0.15", "1.5");
        assert!(HintLibrary::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("outside [0, 1]"));
    }
}
