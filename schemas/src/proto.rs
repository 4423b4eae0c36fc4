//! Generated gRPC code for package `start.v1`, plus conversions to the crate's own types.

#![allow(missing_docs)] // The generated code carries the proto comments; prost adds no docs for a few items.
#![allow(clippy::all, clippy::pedantic)]

tonic::include_proto!("start.v1");

/// The encoded file descriptor set of `start.v1`, served by the coordinator's gRPC reflection
/// so that grpcurl and friends need no local copy of the protos.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("start_v1");
