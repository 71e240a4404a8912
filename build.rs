//! Compiles `proto/lethe/v1/*.proto` with protox (pure Rust, no protoc needed)
//! and writes the descriptor set used by gRPC reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let files = ["lethe/v1/types.proto", "lethe/v1/lethe.proto"];
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(files)?;
    std::fs::write(
        out.join("lethe_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        // Requests that do not decode are INVALID_ARGUMENT (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::LetheCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    for file in files {
        println!("cargo:rerun-if-changed=proto/{file}");
    }
    // `sqlx::migrate!` embeds migrations/ at compile time: a new file must
    // rebuild the crate (sqlx's documented build-script line).
    println!("cargo:rerun-if-changed=migrations");
    Ok(())
}
