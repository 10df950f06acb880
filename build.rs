//! Compiles the protos under `proto/` with protox (no system `protoc`) and
//! writes the descriptor set that gRPC reflection serves.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "floorwatch/v1/common.proto",
    "floorwatch/v1/floor.proto",
    "floorwatch/v1/adherence.proto",
    "floorwatch/v1/roster.proto",
    "floorwatch/v1/ingest.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS)?;
    let descriptors = compiler.file_descriptor_set();

    // compile_fds ignores file_descriptor_set_path, so the bytes for
    // reflection are written here.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("floorwatch_descriptor.bin"), descriptors.encode_to_vec())?;

    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(descriptors)?;
    Ok(())
}
