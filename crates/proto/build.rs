//! Compiles every `.proto` under the workspace's `proto/` folder with tonic-prost-build.
//! Uses `$PROTOC` when set, and the vendored protoc otherwise.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with env!(): a target folder copied from another checkout
    // would otherwise keep compiling that checkout's protos.
    let proto_root = Path::new(&std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let mut files = Vec::new();
    collect_protos(&proto_root, &mut files)?;
    files.sort();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("tributary_descriptor.bin"))
        // Bytes fields of the messaging API (payloads, header values) are `bytes::Bytes`:
        // decoding slices them out of the received buffer instead of copying each one.
        .bytes(".tributary.messaging.v1")
        // Hand-written, with the same wire form (src/record_batch.rs).
        .extern_path(
            ".tributary.messaging.v1.RecordBatch",
            "crate::messaging::v1::RecordBatch",
        )
        .compile_with_config(config, &files, &[proto_root])?;

    println!("cargo:rerun-if-changed=../../proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}

fn collect_protos(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    Ok(())
}
