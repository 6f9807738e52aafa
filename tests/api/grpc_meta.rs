//! Health checking, server reflection, and the binary's start-up behaviour.

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::helpers::*;

#[tokio::test]
async fn health_reports_serving() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut health = HealthClient::new(app.channel.clone());

    for service in ["", "account.v1.AccountService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
}

const EXPECTED_SERVICES: [&str; 4] = [
    "account.v1.AccountService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

#[tokio::test]
async fn reflection_v1_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let app = spawn_app(Backend::Sqlite).await;
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response: {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, EXPECTED_SERVICES);
}

#[tokio::test]
async fn reflection_v1alpha_lists_the_services_and_describes_them() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;

    let app = spawn_app(Backend::Sqlite).await;
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("account.v1.AccountService".into()),
    ]
    .map(|m| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    });
    let mut responses = client
        .server_reflection_info(futures::stream::iter(requests))
        .await
        .unwrap()
        .into_inner();

    let first = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("unexpected reflection response: {first:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, EXPECTED_SERVICES);

    let second = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
        panic!("unexpected reflection response: {second:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_account-service"))
        .env("EMAIL_BACKEND", "pigeon")
        .env("DATABASE_URL", "sqlite::memory:")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("EMAIL_BACKEND"), "{stderr}");
}

#[test]
fn help_lists_every_setting() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_account-service"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in [
        "DATABASE_URL",
        "GRPC_ADDR",
        "HTTP_ADDR",
        "PUBLIC_BASE_URL",
        "SECRET_KEY",
        "CONFIRMATION_LINK_TIMEOUT",
        "FRONTEND_HOMEPAGE",
        "CONFIRMATION_MAIL_REQUEST_PAGE",
        "EMAIL_BACKEND",
        "DEFAULT_LOCALE",
        "TEMPLATES_DIR",
        "EMAIL_FILE_PATH",
        "EMAIL_FROM",
        "SITE_NAME",
        "RUST_LOG",
    ] {
        assert!(
            help.contains(&format!("env: {variable}")),
            "--help lacks {variable}"
        );
    }
    assert!(help.contains("[default: 0.0.0.0:50051]"));
}

#[tokio::test]
async fn shutdown_stops_serving_and_returns() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let addr = app.http_addr;

    app.stop().await;

    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
