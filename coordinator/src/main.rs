//! The start-coordinator binary.

use clap::Parser;
use std::process::ExitCode;

/// start-coordinator: the gRPC coordinator: jobs and leases in Redis, shards recorded exactly once.
#[derive(Parser)]
#[command(name = "start-coordinator", version, about)]
struct Args {}

fn main() -> ExitCode {
    let _args = Args::parse();
    eprintln!("{}", start_coordinator::NOT_BUILT);
    ExitCode::from(2)
}
