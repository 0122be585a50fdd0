//! Places the ONNX Runtime shared library next to the binaries this build produces, Redoc
//! (the renderer of `/docs`, embedded in the binary) in `OUT_DIR`, and the Open Inference
//! Protocol's gRPC service compiled from `proto/` (server for the binary, client for tests).
//!
//! bullpen loads ONNX Runtime at run time (`ort`'s `load-dynamic`), so nothing is linked here.
//! The library comes from the Python package index wheel through `scripts/fetch-onnxruntime.py`; a build that
//! cannot fetch it still succeeds (with a warning) and the binary then says what to do.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SCRIPT: &str = "scripts/fetch-onnxruntime.py";
const REDOC_SCRIPT: &str = "scripts/fetch-redoc.py";
const PROTO: &str = "proto/grpc_predict_v2.proto";

fn main() {
    println!("cargo::rerun-if-changed={SCRIPT}");
    println!("cargo::rerun-if-changed={REDOC_SCRIPT}");
    println!("cargo::rerun-if-env-changed=BULLPEN_SKIP_ORT_FETCH");

    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out: the profile folder holds the binary.
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    compile_proto(&out_dir);
    fetch_redoc(&out_dir);
    let Some(profile_dir) = out_dir.ancestors().nth(3) else {
        println!(
            "cargo::warning=unexpected OUT_DIR layout {}",
            out_dir.display()
        );
        return;
    };
    println!(
        "cargo::rustc-env=BULLPEN_ORT_BUILD_DIR={}",
        profile_dir.display()
    );

    if env::var_os("BULLPEN_SKIP_ORT_FETCH").is_some() {
        return;
    }
    let status = Command::new("python3")
        .arg(SCRIPT)
        .arg(profile_dir)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => println!(
            "cargo::warning=fetching ONNX Runtime failed ({status}); run `python3 {SCRIPT} {}`",
            profile_dir.display()
        ),
        Err(error) => println!(
            "cargo::warning=could not run python3 to fetch ONNX Runtime ({error}); run `python3 {SCRIPT} {}`",
            profile_dir.display()
        ),
    }
}

/// The gRPC service with `protox` (pure Rust, no `protoc`): the server into `OUT_DIR/server`,
/// the client the tests drive it with into `OUT_DIR/client`. A proto that does not compile
/// fails the build.
fn compile_proto(out_dir: &std::path::Path) {
    println!("cargo::rerun-if-changed={PROTO}");
    let descriptors = protox::compile([PROTO], ["proto"]).expect("proto/ compiles");
    for (side, server) in [("server", true), ("client", false)] {
        let dir = out_dir.join(side);
        std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
        let mut builder = tonic_prost_build::configure()
            .build_server(server)
            .build_client(!server)
            .build_transport(false);
        if server {
            // Prost's codec, but a request that is not a valid message is INVALID_ARGUMENT.
            builder = builder.codec_path("crate::grpc::codec::RequestCodec");
        }
        builder
            .out_dir(&dir)
            .compile_fds(descriptors.clone())
            .expect("the gRPC service generates");
    }
}

/// Redoc's bundle and licence into `out_dir`; when they cannot be fetched the build still
/// succeeds, and `/docs` says how to fetch them (the document itself is always served).
fn fetch_redoc(out_dir: &std::path::Path) {
    let fetched = Command::new("python3")
        .arg(REDOC_SCRIPT)
        .arg(out_dir)
        .status()
        .is_ok_and(|status| status.success());
    if fetched {
        return;
    }
    println!(
        "cargo::warning=fetching Redoc failed; /docs will say so. Run `python3 {REDOC_SCRIPT} {}` and build again",
        out_dir.display()
    );
    let message = format!(
        "document.body.textContent = 'This build has no Redoc: run python3 {REDOC_SCRIPT} and build again. The document is at /api/v1/openapi.json.';"
    );
    let written = std::fs::write(out_dir.join("redoc.standalone.js"), message)
        .and_then(|()| std::fs::write(out_dir.join("redoc.LICENSE"), ""))
        .and_then(|()| std::fs::write(out_dir.join("redoc.standalone.js.LICENSE.txt"), ""));
    if let Err(error) = written {
        println!("cargo::warning=could not write the Redoc placeholder: {error}");
    }
}
