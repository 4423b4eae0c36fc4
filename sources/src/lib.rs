//! From the public files to a clean problem set, the path START took to its 50k problems.
//!
//! - [`import`]: maps each public layout (AIME, MATH, NuminaMath, GPQA, HumanEval,
//!   LiveCodeBench, CodeContests, Codeforces, APPS/TACO) onto start's problem row.
//! - [`importer`]: streams files through a mapper, the validator and a date cut-off, counting
//!   every skip by reason; `startctl import` and the bench both run it.
//! - [`pickle`]: a pickle reader for plain data only, for LiveCodeBench's private tests.
//! - [`text`]: the normalised words and hashed n-grams that overlap is measured on.
//! - [`decontaminate`]: removes problems that overlap an evaluation set and collapses
//!   near-duplicates across sources, reporting each with what it matched.
//! - [`mix`]: draws a seeded mix by counts or shares per source and kind, and writes the recipe
//!   that rebuilds it.

pub mod decontaminate;
pub mod import;
pub mod importer;
pub mod mix;
pub mod pickle;
pub mod text;

/// What the unit tests share: the real Python, which the importers' output is checked against.
#[cfg(test)]
pub(crate) mod testing {
    /// Runs `script` with `python3 -c`; its standard output as bytes. Panics with Python's
    /// standard error when it fails.
    pub(crate) fn python(script: &str) -> Vec<u8> {
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .output()
            .expect("python3 runs (scripts/setup installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}
