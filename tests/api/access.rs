//! Caller authentication and scopes: API keys, client certificates, the
//! reflection and health rules, caller labels, quotas and /metrics apart.

use std::collections::HashMap;
use std::path::PathBuf;

use account_service::access::{file_entry, new_key, Scope};
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    complete_sign_in_request, get_account_request, ChangeEmailRequest, ChangePasswordRequest,
    CheckPasswordRequest, CompleteSignInRequest, ConfirmEmailChangeRequest,
    ConfirmRegistrationRequest, ConfirmTotpEnrollmentRequest, DeleteAccountRequest,
    DisableTotpRequest, GetAccountRequest, ListAccountsRequest, ListSessionsRequest,
    RefreshSessionRequest, RegenerateRecoveryCodesRequest, RequestPasswordResetRequest,
    ResendConfirmationRequest, ResetPasswordRequest, RevokeAllSessionsRequest,
    RevokeSessionRequest, SignInRequest, SignOutRequest, StartTotpEnrollmentRequest,
    UpdateProfileRequest, VerifyAccessTokenRequest, WatchAccountEventsRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::helpers::*;

/// An API keys file in a temporary directory, and the key of each caller.
pub struct KeysFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub keys: HashMap<String, String>,
}

impl KeysFile {
    /// One caller per entry: (name, scopes, requests_per_minute).
    pub fn new(callers: &[(&str, &[Scope], Option<u32>)]) -> KeysFile {
        Self::with_extra(callers, "")
    }

    /// As `new`, with `extra` TOML appended (callers without keys).
    pub fn with_extra(callers: &[(&str, &[Scope], Option<u32>)], extra: &str) -> KeysFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("callers.toml");
        let mut text = String::new();
        let mut keys = HashMap::new();
        for (name, scopes, quota) in callers {
            let key = new_key();
            text.push_str(&file_entry(name, scopes, &key, *quota));
            keys.insert((*name).to_owned(), key);
        }
        text.push_str(extra);
        std::fs::write(&path, text).unwrap();
        KeysFile {
            _dir: dir,
            path,
            keys,
        }
    }

    pub fn key(&self, caller: &str) -> &str {
        &self.keys[caller]
    }

    pub fn setting(&self) -> (&'static str, String) {
        ("API_KEYS_FILE", self.path.display().to_string())
    }
}

pub fn with_key<T>(message: T, key: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    request
}

pub const RPCS: [&str; 26] = [
    "Register",
    "ResendConfirmation",
    "ConfirmRegistration",
    "GetAccount",
    "CheckPassword",
    "RequestPasswordReset",
    "ResetPassword",
    "ChangePassword",
    "UpdateProfile",
    "ChangeEmail",
    "ConfirmEmailChange",
    "DeleteAccount",
    "WatchAccountEvents",
    "ListAccounts",
    "SignIn",
    "RefreshSession",
    "SignOut",
    "ListSessions",
    "RevokeSession",
    "RevokeAllSessions",
    "VerifyAccessToken",
    "StartTotpEnrollment",
    "ConfirmTotpEnrollment",
    "DisableTotp",
    "RegenerateRecoveryCodes",
    "CompleteSignIn",
];

/// Calls `method` with a plausible request; only whether the call got past
/// authentication matters to the callers of this.
pub async fn call(channel: &Channel, method: &str, key: Option<&str>) -> Result<(), Status> {
    let mut client = AccountServiceClient::new(channel.clone());
    let email = unique_email();
    match method {
        "Register" => client
            .register(with_key(registration(&email), key))
            .await
            .map(drop),
        "ResendConfirmation" => client
            .resend_confirmation(with_key(ResendConfirmationRequest { email }, key))
            .await
            .map(drop),
        "ConfirmRegistration" => client
            .confirm_registration(with_key(
                ConfirmRegistrationRequest::with_token("not-a-token"),
                key,
            ))
            .await
            .map(drop),
        "GetAccount" => client
            .get_account(with_key(
                GetAccountRequest {
                    lookup: Some(get_account_request::Lookup::Email(email)),
                },
                key,
            ))
            .await
            .map(drop),
        "CheckPassword" => client
            .check_password(with_key(
                CheckPasswordRequest {
                    email,
                    password: "secret123".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "RequestPasswordReset" => client
            .request_password_reset(with_key(RequestPasswordResetRequest { email }, key))
            .await
            .map(drop),
        "ResetPassword" => client
            .reset_password(with_key(
                ResetPasswordRequest {
                    token: "not-a-token".into(),
                    password: "secret123".into(),
                    confirm_password: "secret123".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "ChangePassword" => client
            .change_password(with_key(
                ChangePasswordRequest {
                    id: uuid::Uuid::now_v7().to_string(),
                    current_password: "secret123".into(),
                    password: "other-pass1".into(),
                    confirm_password: "other-pass1".into(),
                    keep_session_id: String::new(),
                },
                key,
            ))
            .await
            .map(drop),
        "UpdateProfile" => client
            .update_profile(with_key(
                UpdateProfileRequest {
                    id: uuid::Uuid::now_v7().to_string(),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["username".into()],
                    }),
                    username: "ann".into(),
                    ..Default::default()
                },
                key,
            ))
            .await
            .map(drop),
        "ChangeEmail" => client
            .change_email(with_key(
                ChangeEmailRequest {
                    id: uuid::Uuid::now_v7().to_string(),
                    new_email: email,
                    current_password: "secret123".into(),
                    code: String::new(),
                },
                key,
            ))
            .await
            .map(drop),
        "ConfirmEmailChange" => client
            .confirm_email_change(with_key(
                ConfirmEmailChangeRequest {
                    token: "not-a-token".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "DeleteAccount" => client
            .delete_account(with_key(
                DeleteAccountRequest {
                    id: uuid::Uuid::now_v7().to_string(),
                    current_password: "secret123".into(),
                    code: String::new(),
                },
                key,
            ))
            .await
            .map(drop),
        "WatchAccountEvents" => client
            .watch_account_events(with_key(WatchAccountEventsRequest::default(), key))
            .await
            .map(drop),
        "ListAccounts" => client
            .list_accounts(with_key(ListAccountsRequest::default(), key))
            .await
            .map(drop),
        "SignIn" => client
            .sign_in(with_key(
                SignInRequest {
                    email,
                    password: "secret123".into(),
                    client: None,
                },
                key,
            ))
            .await
            .map(drop),
        "RefreshSession" => client
            .refresh_session(with_key(
                RefreshSessionRequest {
                    refresh_token: "acr_not-a-token".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "SignOut" => client
            .sign_out(with_key(SignOutRequest::default(), key))
            .await
            .map(drop),
        "ListSessions" => client
            .list_sessions(with_key(
                ListSessionsRequest {
                    account_id: uuid::Uuid::now_v7().to_string(),
                },
                key,
            ))
            .await
            .map(drop),
        "RevokeSession" => client
            .revoke_session(with_key(
                RevokeSessionRequest {
                    account_id: uuid::Uuid::now_v7().to_string(),
                    session_id: uuid::Uuid::now_v7().to_string(),
                },
                key,
            ))
            .await
            .map(drop),
        "RevokeAllSessions" => client
            .revoke_all_sessions(with_key(
                RevokeAllSessionsRequest {
                    account_id: uuid::Uuid::now_v7().to_string(),
                    except_session_id: String::new(),
                },
                key,
            ))
            .await
            .map(drop),
        "VerifyAccessToken" => client
            .verify_access_token(with_key(
                VerifyAccessTokenRequest {
                    access_token: "not.a.token".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "StartTotpEnrollment" => client
            .start_totp_enrollment(with_key(
                StartTotpEnrollmentRequest {
                    account_id: uuid::Uuid::now_v7().to_string(),
                    current_password: "secret123".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "ConfirmTotpEnrollment" => client
            .confirm_totp_enrollment(with_key(
                ConfirmTotpEnrollmentRequest {
                    account_id: uuid::Uuid::now_v7().to_string(),
                    code: "123456".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "DisableTotp" => client
            .disable_totp(with_key(
                DisableTotpRequest {
                    account_id: uuid::Uuid::now_v7().to_string(),
                    current_password: "secret123".into(),
                    code: "123456".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "RegenerateRecoveryCodes" => client
            .regenerate_recovery_codes(with_key(
                RegenerateRecoveryCodesRequest {
                    account_id: uuid::Uuid::now_v7().to_string(),
                    code: "123456".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "CompleteSignIn" => client
            .complete_sign_in(with_key(
                CompleteSignInRequest {
                    challenge: "acc_not-a-challenge".into(),
                    factor: Some(complete_sign_in_request::Factor::TotpCode("123456".into())),
                    client: None,
                },
                key,
            ))
            .await
            .map(drop),
        other => panic!("no such RPC {other}"),
    }
}

/// Whether a call got past authentication and scopes (CheckPassword's own
/// UNAUTHENTICATED, for wrong credentials, is an answer from past them).
pub fn admitted(result: &Result<(), Status>) -> bool {
    match result {
        Ok(()) => true,
        Err(status) => match status.code() {
            Code::PermissionDenied => false,
            // The call's own answer to bad credentials or tokens, past the
            // caller's key.
            Code::Unauthenticated => status
                .get_details_error_info()
                .is_some_and(|i| !i.reason.starts_with("API_KEY_")),
            _ => true,
        },
    }
}

fn error_info(status: &Status) -> (String, HashMap<String, String>) {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, "account.v1");
    (info.reason, info.metadata)
}

#[tokio::test]
async fn every_rpc_needs_a_valid_key_with_its_scope() {
    let file = KeysFile::new(&[
        ("registrar", &[Scope::AccountsRegister], None),
        ("confirmer", &[Scope::AccountsConfirm], None),
        ("reader", &[Scope::AccountsRead], None),
        ("writer", &[Scope::AccountsWrite], None),
        ("watcher", &[Scope::EventsRead], None),
        ("admin", &[Scope::AccountsAdmin], None),
        ("web", &[Scope::SessionsWrite], None),
        ("verifier", &[Scope::SessionsVerify], None),
    ]);
    let (var, value) = file.setting();
    let app = spawn_app(Backend::Sqlite).set(var, value).await;
    let needs = [
        ("Register", "accounts:register", "registrar"),
        ("ResendConfirmation", "accounts:register", "registrar"),
        ("ConfirmRegistration", "accounts:confirm", "confirmer"),
        ("GetAccount", "accounts:read", "reader"),
        ("CheckPassword", "accounts:read", "reader"),
        ("RequestPasswordReset", "accounts:register", "registrar"),
        ("ResetPassword", "accounts:write", "writer"),
        ("ChangePassword", "accounts:write", "writer"),
        ("UpdateProfile", "accounts:write", "writer"),
        ("ChangeEmail", "accounts:write", "writer"),
        ("ConfirmEmailChange", "accounts:confirm", "confirmer"),
        ("DeleteAccount", "accounts:write", "writer"),
        ("WatchAccountEvents", "events:read", "watcher"),
        ("ListAccounts", "accounts:admin", "admin"),
        ("SignIn", "sessions:write", "web"),
        ("RefreshSession", "sessions:write", "web"),
        ("SignOut", "sessions:write", "web"),
        ("ListSessions", "accounts:read", "reader"),
        ("RevokeSession", "accounts:write", "writer"),
        ("RevokeAllSessions", "accounts:write", "writer"),
        ("VerifyAccessToken", "sessions:verify", "verifier"),
        ("StartTotpEnrollment", "accounts:write", "writer"),
        ("ConfirmTotpEnrollment", "accounts:write", "writer"),
        ("DisableTotp", "accounts:write", "writer"),
        ("RegenerateRecoveryCodes", "accounts:write", "writer"),
        ("CompleteSignIn", "sessions:write", "web"),
    ];
    assert_eq!(needs.len(), RPCS.len());
    for (method, scope, holder) in needs {
        // No key.
        let status = call(&app.channel, method, None).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{method}");
        assert_eq!(error_info(&status).0, "API_KEY_MISSING", "{method}");
        // A key nobody holds, and garbage in the header.
        for bad in [new_key(), "".into(), "x".repeat(4000)] {
            let status = call(&app.channel, method, Some(&bad)).await.unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{method}");
            assert_eq!(error_info(&status).0, "API_KEY_INVALID", "{method}");
            assert!(!status.message().contains(&bad[..bad.len().min(20)]) || bad.is_empty());
        }
        // The holder of the scope, and admin for every `accounts:` scope,
        // get through.
        let admin_holds = scope.starts_with("accounts:");
        assert!(admitted(
            &call(&app.channel, method, Some(file.key(holder))).await
        ));
        assert_eq!(
            admitted(&call(&app.channel, method, Some(file.key("admin"))).await),
            admin_holds,
            "{method} as admin"
        );
        // Everyone else is refused, told which scope is missing.
        for (other, _) in file
            .keys
            .iter()
            .filter(|(n, _)| *n != holder && (*n != "admin" || !admin_holds))
        {
            let status = call(&app.channel, method, Some(file.key(other)))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::PermissionDenied, "{method} as {other}");
            let (reason, metadata) = error_info(&status);
            assert_eq!(reason, "SCOPE_MISSING");
            assert_eq!(metadata.get("scope").map(String::as_str), Some(scope));
        }
    }
    // The refused calls changed nothing: no account, no mail.
    let registered = app.db.count("accounts").await;
    assert_eq!(
        registered, 2,
        "only the registrar's and admin's calls registered"
    );
}

#[tokio::test]
async fn the_authorization_header_is_parsed_strictly() {
    let file = KeysFile::new(&[("reader", &[Scope::AccountsRead], None)]);
    let (var, value) = file.setting();
    let app = spawn_app(Backend::Sqlite).set(var, value).await;
    let key = file.key("reader");
    let mut client = AccountServiceClient::new(app.channel.clone());
    let lookup = || GetAccountRequest {
        lookup: Some(get_account_request::Lookup::Email(unique_email())),
    };
    let send = |values: Vec<String>| {
        let mut request = Request::new(lookup());
        for v in values {
            request
                .metadata_mut()
                .append("authorization", v.parse().unwrap());
        }
        request
    };
    // The scheme is case-insensitive.
    let ok = client
        .get_account(send(vec![format!("bearer {key}")]))
        .await;
    assert_code(&ok, Code::NotFound);
    for values in [
        vec![format!("Basic {key}")],
        vec![key.to_owned()],
        vec![format!("Bearer {key}x")],
        vec![format!("Bearer {key}"), format!("Bearer {key}")],
        vec![format!("Bearer {}", &key[..key.len() - 1])],
    ] {
        let status = client.get_account(send(values.clone())).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{values:?}");
        assert_eq!(error_info(&status).0, "API_KEY_INVALID");
    }
}

#[tokio::test]
async fn health_is_open_and_reflection_needs_a_caller_only_in_production() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;

    let file = KeysFile::new(&[("reader", &[Scope::AccountsRead], None)]);
    let (var, value) = file.setting();
    let list = || ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    for production in [false, true] {
        let app = spawn_app(Backend::Sqlite)
            .set(var, value.clone())
            .set(
                "APP_ENV",
                if production {
                    "production"
                } else {
                    "development"
                },
            )
            .await;
        let mut health = HealthClient::new(app.channel.clone());
        let checked = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        assert!(checked.is_ok(), "health is always open: {checked:?}");

        let mut reflection = ServerReflectionClient::new(app.channel.clone());
        let anonymous = reflection
            .server_reflection_info(futures::stream::iter([list()]))
            .await;
        let first = match anonymous {
            Ok(stream) => stream.into_inner().message().await,
            Err(status) => Err(status),
        };
        if production {
            let status = first.unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated);
            assert_eq!(error_info(&status).0, "API_KEY_MISSING");
            let bad = reflection
                .server_reflection_info(with_key(futures::stream::iter([list()]), Some("acs_x")))
                .await
                .unwrap_err();
            assert_eq!(error_info(&bad).0, "API_KEY_INVALID");
            // Any valid key will do, whatever its scopes.
            let keyed = reflection
                .server_reflection_info(with_key(
                    futures::stream::iter([list()]),
                    Some(file.key("reader")),
                ))
                .await
                .unwrap();
            assert!(keyed.into_inner().message().await.unwrap().is_some());
        } else {
            assert!(
                first.unwrap().is_some(),
                "reflection is open in development"
            );
        }
    }
}

#[tokio::test]
async fn without_a_keys_file_every_call_is_allowed() {
    let app = spawn_app(Backend::Sqlite).await;
    for method in RPCS {
        assert!(
            admitted(&call(&app.channel, method, None).await),
            "{method}"
        );
    }
    let metrics = app
        .http
        .get(app.http_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("caller=\"anonymous\""), "{metrics}");
}

#[tokio::test]
async fn calls_are_counted_by_caller_and_metrics_can_move_off_the_public_port() {
    let file = KeysFile::new(&[
        ("checkout", &[Scope::AccountsRead], None),
        ("crm", &[Scope::AccountsRead], None),
        ("newsletter", &[Scope::EventsRead], None),
    ]);
    let (var, value) = file.setting();
    let app = spawn_app(Backend::Sqlite)
        .set(var, value)
        .set("METRICS_ADDR", "127.0.0.1:0")
        .await;
    for _ in 0..3 {
        call(&app.channel, "GetAccount", Some(file.key("checkout")))
            .await
            .unwrap_err();
    }
    call(&app.channel, "GetAccount", Some(file.key("crm")))
        .await
        .unwrap_err();
    call(&app.channel, "GetAccount", Some("acs_wrong"))
        .await
        .unwrap_err();
    // Known but refused for its scope: counted under its own name.
    let refused = call(&app.channel, "GetAccount", Some(file.key("newsletter"))).await;
    assert_code(&refused, Code::PermissionDenied);

    // /metrics is gone from the sidecar shoppers reach…
    let public = app.http.get(app.http_url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), reqwest::StatusCode::NOT_FOUND);
    // …and the confirmation link and probes stay there.
    let link = app
        .http
        .get(app.http_url("/account/confirm-registration/?token=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(link.status(), reqwest::StatusCode::FOUND);
    let metrics_addr = app.metrics_addr.unwrap();
    let text = app
        .http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |caller: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("account_rpc_requests_total{")
                    && l.contains("method=\"GetAccount\"")
                    && l.contains(&format!("caller=\"{caller}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    assert_eq!(line("checkout").as_deref(), Some("3"), "{text}");
    assert_eq!(line("crm").as_deref(), Some("1"), "{text}");
    assert_eq!(line("unauthenticated").as_deref(), Some("1"), "{text}");
    assert!(
        text.contains("caller=\"newsletter\",code=\"PermissionDenied\"} 1"),
        "{text}"
    );
    assert!(!text.contains("acs_"), "no key in metrics");
}

async fn a_caller_over_its_quota_waits(backend: Backend) {
    let file = KeysFile::new(&[
        ("batch", &[Scope::AccountsRead], Some(3)),
        ("checkout", &[Scope::AccountsRead], None),
    ]);
    let (var, value) = file.setting();
    let app = spawn_app(backend).set(var, value).await;
    for _ in 0..3 {
        let r = call(&app.channel, "GetAccount", Some(file.key("batch"))).await;
        assert_code(&r, Code::NotFound);
    }
    let status = call(&app.channel, "GetAccount", Some(file.key("batch")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let retry = status.get_details_retry_info().expect("RetryInfo");
    let delay = retry.retry_delay.expect("a delay");
    assert!(
        delay.as_secs_f64() > 0.0 && delay.as_secs_f64() <= 20.0,
        "{delay:?}"
    );
    assert_eq!(error_info(&status).0, "QUOTA_EXCEEDED");
    // Other callers are not held back by it.
    for _ in 0..5 {
        let r = call(&app.channel, "GetAccount", Some(file.key("checkout"))).await;
        assert_code(&r, Code::NotFound);
    }
}

on_both_backends!(a_caller_over_its_quota_waits);
