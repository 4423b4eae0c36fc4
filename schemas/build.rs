//! Compiles the gRPC contract in `proto/start/v1` with tonic's prost builder.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/start/v1/common.proto",
        "proto/start/v1/jobs.proto",
        "proto/start/v1/workers.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&protos, &["proto"])?;
    Ok(())
}
