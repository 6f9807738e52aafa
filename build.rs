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
    println!("cargo:rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo:rerun-if-env-changed=REQUIRE_POSTGRES_TESTS");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    let named = env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty());
    let required = env::var("REQUIRE_POSTGRES_TESTS").is_ok_and(|v| v == "1");
    if named || required {
        println!("cargo:rustc-cfg=postgres_tests");
    }
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
