//! The tools a model can call by writing a fenced block: their names, as a job spec enables them
//! and every row records them.
//!
//! The name is the contract. What each tool does (which fences open it, how the sandbox runs
//! it, how its result is written back) is the engine's tool registry (`start_engine::tool`);
//! a name added here without a registry entry there does not compile.

use std::fmt;
use std::str::FromStr;

/// A tool the model can call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ToolName {
    /// A ```python block, run as a script.
    Python,
    /// A ```sql block, run against the problem's attached files.
    Sql,
}

impl ToolName {
    /// Every tool, in the order rows list them.
    pub const ALL: [ToolName; 2] = [Self::Python, Self::Sql];

    /// The name used in job specs, rows and flags (`python`, `sql`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Sql => "sql",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for ToolName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown tool {s:?}; expected one of: {}",
                    Self::ALL.map(ToolName::as_str).join(", ")
                )
            })
    }
}

/// The tools enabled for a job: a block in any other language stays text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ToolSet(u8);

impl ToolSet {
    /// Python alone: START's tool, and what a job spec that names none gets.
    pub const PYTHON: ToolSet = ToolSet(1);

    /// No tool: every block stays text.
    pub const NONE: ToolSet = ToolSet(0);

    /// Every tool there is.
    pub fn all() -> Self {
        Self::of(ToolName::ALL)
    }

    /// The set of `tools`.
    pub fn of(tools: impl IntoIterator<Item = ToolName>) -> Self {
        ToolSet(tools.into_iter().fold(0, |bits, t| bits | t.bit()))
    }

    /// The set a job spec's names ask for: Python alone when it names none; an unknown or
    /// repeated name is an error saying which.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        if names.is_empty() {
            return Ok(Self::PYTHON);
        }
        let mut set = Self::NONE;
        for name in names {
            let tool: ToolName = name.as_ref().parse()?;
            if set.contains(tool) {
                return Err(format!("tool {tool} is named twice"));
            }
            set = set.with(tool);
        }
        Ok(set)
    }

    /// This set and `tool`.
    pub fn with(self, tool: ToolName) -> Self {
        ToolSet(self.0 | tool.bit())
    }

    /// Whether `tool` is enabled.
    pub fn contains(self, tool: ToolName) -> bool {
        self.0 & tool.bit() != 0
    }

    /// Whether no tool is enabled.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The enabled tools, in [`ToolName::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = ToolName> {
        ToolName::ALL.into_iter().filter(move |t| self.contains(*t))
    }

    /// Their names, as a job spec and a row hold them.
    pub fn names(self) -> Vec<String> {
        self.iter().map(|t| t.as_str().to_string()).collect()
    }
}

impl Default for ToolSet {
    fn default() -> Self {
        Self::PYTHON
    }
}

impl fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for ToolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.names().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_round_trip_and_errors_name_the_culprit() {
        for t in ToolName::ALL {
            assert_eq!(t.as_str().parse::<ToolName>(), Ok(t));
        }
        assert_eq!(ToolSet::from_names::<&str>(&[]), Ok(ToolSet::PYTHON));
        let both = ToolSet::from_names(&["sql", "python"]).unwrap();
        assert_eq!(both, ToolSet::all());
        assert_eq!(both.names(), ["python", "sql"]);
        assert_eq!(both.to_string(), "python,sql");
        let only_sql = ToolSet::from_names(&["sql"]).unwrap();
        assert!(only_sql.contains(ToolName::Sql) && !only_sql.contains(ToolName::Python));
        assert!(ToolSet::from_names(&["bash"])
            .unwrap_err()
            .contains("unknown tool \"bash\"; expected one of: python, sql"));
        assert!(ToolSet::from_names(&["sql", "sql"])
            .unwrap_err()
            .contains("named twice"));
    }
}
