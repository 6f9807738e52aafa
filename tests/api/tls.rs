//! gRPC over TLS and mTLS with certificates made at test time.

use std::time::Duration;

use account_service::access::Scope;
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{get_account_request, GetAccountRequest};
use account_testkit::tls::{self, TestCa};
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;

use crate::access::{call, KeysFile};
use crate::helpers::*;

async fn lookup(channel: &Channel) -> Result<(), tonic::Status> {
    AccountServiceClient::new(channel.clone())
        .get_account(GetAccountRequest {
            lookup: Some(get_account_request::Lookup::Email(unique_email())),
        })
        .await
        .map(drop)
}

/// A plaintext HTTP/2 client on a TLS port gets nowhere.
async fn plaintext_is_refused(app: &TestApp) {
    let plain = Channel::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    let result = match plain.connect().await {
        Ok(channel) => lookup(&channel).await.map_err(|s| s.code()),
        Err(_) => Err(Code::Unavailable),
    };
    assert_refused_by_transport(result, "plaintext on the TLS port");
}

/// The call never reached the service: a refused handshake or connection
/// (the lookup of an unknown address would otherwise answer NOT_FOUND, and
/// a call without a key UNAUTHENTICATED).
fn assert_refused_by_transport(result: Result<(), Code>, what: &str) {
    assert!(
        matches!(
            result,
            Err(Code::Unavailable | Code::Unknown | Code::Internal)
        ),
        "{what}: {result:?}"
    );
}

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca_and_refuses_plaintext() {
    let ca = TestCa::new("Test server CA");
    let dir = tempfile::tempdir().unwrap();
    let files = tls::write_server_files(dir.path(), &ca.server(), None);
    let app = spawn_app(Backend::Sqlite).set_all(files).await;

    let channel = tls::channel(app.grpc_addr, &ca.pem(), None).await.unwrap();
    assert_code(&lookup(&channel).await, Code::NotFound);
    // Calls work as on plaintext: register, then look up.
    for method in crate::access::RPCS {
        let r = call(&channel, method, None).await;
        assert!(
            !matches!(
                r.as_ref().map_err(|s| s.code()),
                Err(Code::Unavailable | Code::Unknown)
            ),
            "{method}: {r:?}"
        );
    }
    plaintext_is_refused(&app).await;
    // A client that trusts another CA does not accept the server.
    let stranger = TestCa::new("Someone else");
    let refused = match tls::channel(app.grpc_addr, &stranger.pem(), None).await {
        Ok(channel) => lookup(&channel).await.map_err(|s| s.code()),
        Err(_) => Err(Code::Unavailable),
    };
    assert_refused_by_transport(refused, "a client trusting another CA");
}

#[tokio::test]
async fn mtls_names_the_caller_by_its_certificate() {
    let server_ca = TestCa::new("Test server CA");
    let client_ca = TestCa::new("Test client CA");
    let dir = tempfile::tempdir().unwrap();
    let files = tls::write_server_files(dir.path(), &server_ca.server(), Some(&client_ca));
    // Scopes for certificate holders come from the same file, without keys.
    let keys = KeysFile::with_extra(
        &[("keyed", &[Scope::AccountsRead], None)],
        "[callers.orders]\nscopes = [\"accounts:read\"]\n[callers.newsletter]\nscopes = [\"events:read\"]\n\
         [callers.\"orders.shop.svc.cluster.local\"]\nscopes = [\"accounts:read\"]\n",
    );
    let (var, value) = keys.setting();
    let app = spawn_app(Backend::Sqlite)
        .set_all(files)
        .set(var, value)
        .await;
    let ca = server_ca.pem();

    // The CN names the caller, and the file gives it its scopes.
    let orders = tls::channel(app.grpc_addr, &ca, Some(&client_ca.client("orders")))
        .await
        .unwrap();
    assert_code(&lookup(&orders).await, Code::NotFound);
    let newsletter = tls::channel(app.grpc_addr, &ca, Some(&client_ca.client("newsletter")))
        .await
        .unwrap();
    let status = lookup(&newsletter).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "SCOPE_MISSING"
    );
    // A certified name the file does not list has no scopes.
    let unknown = tls::channel(app.grpc_addr, &ca, Some(&client_ca.client("stranger")))
        .await
        .unwrap();
    assert_code(&lookup(&unknown).await, Code::PermissionDenied);
    // Without a CN, the first DNS name is the caller's name.
    let by_dns = tls::channel(
        app.grpc_addr,
        &ca,
        Some(&client_ca.client_with_dns_name("orders")),
    )
    .await
    .unwrap();
    assert_code(&lookup(&by_dns).await, Code::NotFound);
    // Service names in certificates have dots; the file quotes them.
    let dotted = tls::channel(
        app.grpc_addr,
        &ca,
        Some(&client_ca.client_with_dns_name("orders.shop.svc.cluster.local")),
    )
    .await
    .unwrap();
    assert_code(&lookup(&dotted).await, Code::NotFound);
    // A key sent over an mTLS connection is what counts for that call.
    let keyed = call(&newsletter, "GetAccount", Some(keys.key("keyed"))).await;
    assert_code(&keyed, Code::NotFound);

    // No certificate, or one from another CA: the handshake fails.
    let refused = |r: Result<Channel, tonic::transport::Error>| async move {
        match r {
            Ok(channel) => lookup(&channel).await.map_err(|s| s.code()),
            Err(_) => Err(Code::Unavailable),
        }
    };
    let none = refused(tls::channel(app.grpc_addr, &ca, None).await).await;
    assert_refused_by_transport(none, "no client certificate");
    let forged = TestCa::new("Test client CA");
    let other =
        refused(tls::channel(app.grpc_addr, &ca, Some(&forged.client("orders"))).await).await;
    assert_refused_by_transport(other, "a certificate from another CA");
    plaintext_is_refused(&app).await;

    // The service still answers after all that.
    assert_code(&lookup(&orders).await, Code::NotFound);
}

#[tokio::test]
async fn mtls_without_a_keys_file_admits_every_certificate_holder() {
    let server_ca = TestCa::new("Test server CA");
    let client_ca = TestCa::new("Test client CA");
    let dir = tempfile::tempdir().unwrap();
    let files = tls::write_server_files(dir.path(), &server_ca.server(), Some(&client_ca));
    let app = spawn_app(Backend::Sqlite).set_all(files).await;
    let channel = tls::channel(
        app.grpc_addr,
        &server_ca.pem(),
        Some(&client_ca.client("anything")),
    )
    .await
    .unwrap();
    for method in crate::access::RPCS {
        let r = call(&channel, method, None).await;
        assert!(crate::access::admitted(&r), "{method}: {r:?}");
    }
}
