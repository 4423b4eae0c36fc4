//! Generated gRPC code for package `start.v1`, plus conversions to the crate's own types.

#![allow(missing_docs)] // The generated code carries the proto comments; prost adds no docs for a few items.
#![allow(clippy::all, clippy::pedantic)]

tonic::include_proto!("start.v1");
