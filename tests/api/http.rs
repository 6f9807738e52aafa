//! The HTTP sidecar's routes, methods and probes.

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(probes_answer, readiness_fails_when_the_database_is_gone);

async fn probes_answer(backend: Backend) {
    let app = spawn_app(backend).await;

    let health = app.http.get(app.http_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.http.get(app.http_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

async fn readiness_fails_when_the_database_is_gone(backend: Backend) {
    let app = spawn_app(backend).await;

    app.storage.close().await;

    let ready = app.http.get(app.http_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health = app.http.get(app.http_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // RPCs report the outage as UNAVAILABLE, not INTERNAL.
    let status = app.get_by_email(&unique_email()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
}

#[tokio::test]
async fn other_methods_and_paths() {
    let app = spawn_app(Backend::Sqlite).await;

    for path in [
        "/account/confirm-registration/",
        "/account/confirm-registration",
    ] {
        let post = app.http.post(app.http_url(path)).send().await.unwrap();
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let delete = app.http.delete(app.http_url(path)).send().await.unwrap();
        assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    for path in [
        "/",
        "/account/",
        "/account/confirm-registration/x",
        "/metrics-nope",
    ] {
        let got = app.http.get(app.http_url(path)).send().await.unwrap();
        assert_eq!(got.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn redirect_target_cannot_be_chosen_by_the_request() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, link) = app.register_and_get_link(&unique_email()).await;

    for path in [
        format!("{link}&next=https://evil.example/"),
        app.http_url("/account/confirm-registration/?token=x&redirect=https://evil.example/"),
    ] {
        let response = app
            .http
            .get(&path)
            .header("Host", "evil.example")
            .header("Referer", "https://evil.example/")
            .send()
            .await
            .unwrap();
        let location = response.headers()["location"].to_str().unwrap();
        assert!(
            location == HOMEPAGE || location == REQUEST_PAGE,
            "{location}"
        );
    }
}
