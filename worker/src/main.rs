//! The start-worker binary.

use clap::Parser;
use std::process::ExitCode;

/// start-worker: the GPU worker: batched llama.cpp generation with the Hint-infer tool loop and Docker sandboxes.
#[derive(Parser)]
#[command(name = "start-worker", version, about)]
struct Args {}

fn main() -> ExitCode {
    let _args = Args::parse();
    eprintln!("{}", start_worker::NOT_BUILT);
    ExitCode::from(2)
}
