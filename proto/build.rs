//! Compiles `dittofs/control/v1/control.proto` (needs `protoc`: Debian `protobuf-compiler`,
//! installed by `scripts/install-deps.sh`, or set `PROTOC`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=dittofs/control/v1/control.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["dittofs/control/v1/control.proto"], &["."])?;
    Ok(())
}
