//! Compiles the protobuf contract with a pure-Rust compiler (no system protoc)
//! and keeps the descriptor set for gRPC server reflection.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/account/v1/account.proto",
        // Only for reflection: lets generic clients decode status details.
        "proto/google/rpc/error_details.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    // The PostgreSQL variants of the tests are compiled as ignored, with the
    // reason, when no server is named: the summary then counts them as
    // ignored instead of passing tests that returned early. CI requires them.
    test_cfg(
        "postgres_tests",
        "TEST_DATABASE_URL",
        "REQUIRE_POSTGRES_TESTS",
    );
    // Likewise the check of access tokens with PyJWT, which needs a Python
    // with PyJWT and cryptography installed.
    test_cfg("pyjwt_tests", "TEST_PYTHON", "REQUIRE_PYJWT_TESTS");
    // And the profile images kept in an S3-compatible server.
    test_cfg("s3_tests", "TEST_S3_ENDPOINT", "REQUIRE_S3_TESTS");
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out.join("account_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        // Undecodable requests are the client's fault: INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::grpc::codec::AccountCodec")
        .compile_fds(fds)?;
    Ok(())
}

/// Sets `cfg` for the tests when `named` is set (not empty), or when
/// `required` is `1`, where a test without what it needs fails instead.
fn test_cfg(cfg: &str, named: &str, required: &str) {
    println!("cargo:rerun-if-env-changed={named}");
    println!("cargo:rerun-if-env-changed={required}");
    println!("cargo::rustc-check-cfg=cfg({cfg})");
    let is_named = env::var(named).is_ok_and(|v| !v.is_empty());
    let is_required = env::var(required).is_ok_and(|v| v == "1");
    if is_named || is_required {
        println!("cargo:rustc-cfg={cfg}");
    }
}
