//! Compiles proto/akidb/v1/akidb.proto with protox (pure Rust: no protoc needed) into the
//! tonic server and client, and keeps the encoded descriptor set for server reflection.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/akidb/v1/akidb.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("akidb_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_transport(false).compile_fds(fds)?;
    Ok(())
}
