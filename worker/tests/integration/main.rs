//! The worker's integration tests in one binary (each module was a binary of its own, and each
//! linked llama.cpp): clusters of real processes under faults, containers, the dashboard's
//! series, rows of tools beyond Python, and units. Run after scripts/setup.

mod common;

mod cluster;
mod containers;
mod dashboard;
mod data;
mod units;
