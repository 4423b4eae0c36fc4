//! Compiles the gRPC contract in `proto/start/v1` with tonic's prost builder.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/start/v1/common.proto",
        "proto/start/v1/jobs.proto",
        "proto/start/v1/workers.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let descriptor = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("start_v1.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor)
        .build_server(true)
        .build_client(true)
        // Attached files' bytes are shared, not copied, on their way from a client to a unit.
        .bytes(".start.v1.DataFile.content")
        .bytes(".start.v1.FileChunk.data")
        .compile_protos(&protos, &["proto"])?;
    Ok(())
}
