//! Compiles `dittofs/control/v1/control.proto`.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate (Google's release binaries, bundled),
//! so `cargo build` works on a machine with nothing installed; set `PROTOC` to use another.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=dittofs/control/v1/control.proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    let mut config = tonic_prost_build::Config::new();
    // (without an explicit executable, prost-build uses `PROTOC`)
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &["dittofs/control/v1/control.proto"], &["."])?;
    Ok(())
}
