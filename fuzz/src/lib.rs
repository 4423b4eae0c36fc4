//! start's fuzz campaign, on stable Rust.
//!
//! `cargo fuzz` needs a nightly compiler, which the build machines cannot install, so the
//! engine is start's own: every input is a real file (a dataset's release file, a shard, a
//! manifest start wrote, a grader's test case) run through a stack of seeded mutations
//! ([`mutate`]). There is no coverage feedback; in its place each target has a dictionary of the
//! tokens its format is made of, and mutations that repeat a slice many times over (deep
//! nesting, long runs) and write boundary numbers into digit runs. Input `i` of a campaign is a
//! function of the campaign's seed and `i` alone, so a finding is re-made from its index and
//! any run can be repeated.
//!
//! The targets ([`targets`]) are the parsers of input nobody here controls: problem files
//! (JSONL, gzip, Parquet, CSV), the code-test specs, attached files' checks, LiveCodeBench's
//! pickles, the LaTeX and answer parser, the choice and judge verdict parsers, the
//! server-sent-events client, the shard reader and the manifest. The bench (`benches/fuzz.rs`)
//! runs N inputs per target and reports panics, inputs slower than a second and processes that
//! died (an allocation over the memory limit aborts); `tests/regressions.rs` replays every input
//! kept in `regressions/<target>/`.

pub mod mutate;
pub mod targets;

pub use mutate::{input, Rng};
pub use targets::{all, Target};
