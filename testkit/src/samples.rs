//! Values the tests build the way other systems do: Django's password
//! hashes, the settings of an SMTP test, a Prometheus sample.

/// `pbkdf2_sha256$iterations$salt$base64(PBKDF2-HMAC-SHA256(password, salt))`,
/// as Django's PBKDF2PasswordHasher writes it.
pub fn django_pbkdf2(password: &str, salt: &str, iterations: u32) -> String {
    use base64::Engine;
    let mut key = [0u8; 32];
    let rounds = std::num::NonZeroU32::new(iterations).expect("at least one round");
    account_service::auth::pbkdf2_sha256(password.as_bytes(), salt.as_bytes(), rounds, &mut key);
    format!(
        "pbkdf2_sha256${iterations}${salt}${}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// The settings that send a test application's mail to the SMTP server at
/// `url`, retrying quickly.
pub fn smtp_settings(url: String) -> [(&'static str, String); 4] {
    [
        ("EMAIL_BACKEND", "smtp".into()),
        ("SMTP_URL", url),
        ("SMTP_TIMEOUT", "5".into()),
        ("EMAIL_RETRY_DELAY", "0.1".into()),
    ]
}

/// The value of one sample line of a Prometheus exposition, 0 when absent.
pub fn metric_sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `account_password_hashes_total` as the sidecar at `http_addr` reports it:
/// every password hash computed or checked.
pub async fn password_hashes_so_far(http_addr: std::net::SocketAddr) -> f64 {
    let text = reqwest::get(format!("http://{http_addr}/metrics"))
        .await
        .expect("the metrics endpoint")
        .text()
        .await
        .expect("the metrics text");
    assert!(
        text.contains("account_password_hashes_total "),
        "no hash counter in {text}"
    );
    metric_sample(&text, "account_password_hashes_total ")
}

/// The `google.rpc.ErrorInfo` reason of a status, empty when it has none.
pub fn error_reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// The service's binary, with an empty environment, run from the temporary
/// directory. A macro: the binary's path is known to integration tests only.
#[macro_export]
macro_rules! service_binary {
    () => {{
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_account-service"));
        command.env_clear().current_dir(std::env::temp_dir());
        command
    }};
}
