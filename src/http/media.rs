//! The /media route: profile images served from the media store, for paths
//! that name one exactly and for nothing else, cached for ever by the
//! content hash in their name.

use axum::extract::{FromRef, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::media::{MediaStore, MediaStoreError, ProfileKey};
use crate::telemetry::error_chain;

/// The route's path; `path` is read from the raw request URI, not from the
/// decoded parameter.
const ROUTE: &str = "/media/{*path}";
/// A name holds the hash of its content: what it names never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// GET and HEAD of /media/…, for any router whose state holds a
/// [`MediaStore`]. No database is involved: images are served before the
/// service is ready.
pub(super) fn routes<S>() -> Router<S>
where
    MediaStore: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(ROUTE, get(get_media).head(head_media))
}

async fn get_media(State(store): State<MediaStore>, uri: Uri, headers: HeaderMap) -> Response {
    serve(&store, &uri, &headers, false).await
}

async fn head_media(State(store): State<MediaStore>, uri: Uri, headers: HeaderMap) -> Response {
    serve(&store, &uri, &headers, true).await
}

async fn serve(store: &MediaStore, uri: &Uri, headers: &HeaderMap, head: bool) -> Response {
    let Some(key) = key_of(uri.path()) else {
        return not_found();
    };
    let etag = format!("\"{}\"", key.hash());
    // Only the object's existence is asked for a conditional request or a
    // HEAD: the bytes are read for a full answer alone.
    let conditional = none_match(headers, &etag);
    if head || conditional.is_some() {
        let size = match store.size(key.as_str()).await {
            Ok(Some(size)) => size,
            Ok(None) => return not_found(),
            Err(e) => return unavailable(&key, &e),
        };
        if conditional == Some(true) {
            return not_modified(&etag);
        }
        if head {
            return found(&key, &etag, size, None);
        }
    }
    match store.get(key.as_str()).await {
        Ok(Some(bytes)) => {
            let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            found(&key, &etag, size, Some(bytes))
        }
        Ok(None) => not_found(),
        Err(e) => unavailable(&key, &e),
    }
}

/// The key a request path names, or `None`. The raw path is checked before
/// it is parsed: an escape, a backslash, an empty or dot segment never
/// reaches the parser, let alone the store.
fn key_of(path: &str) -> Option<ProfileKey> {
    let rest = path.strip_prefix("/media/")?;
    if rest.contains(['%', '\\'])
        || rest.contains("//")
        || rest.split('/').any(|s| s == "." || s == "..")
    {
        return None;
    }
    ProfileKey::parse(rest)
}

/// Whether If-None-Match holds `etag` (or `*`), compared weakly as RFC 9110
/// asks for this header; `None` without the header.
fn none_match(headers: &HeaderMap, etag: &str) -> Option<bool> {
    let mut values = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
    values.peek()?;
    let matched = values
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag);
    Some(matched)
}

fn found(key: &ProfileKey, etag: &str, size: u64, body: Option<axum::body::Bytes>) -> Response {
    let mut response = body.map_or_else(
        || StatusCode::OK.into_response(),
        |bytes| (StatusCode::OK, bytes).into_response(),
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(key.content_type()),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    cache_headers(headers, etag);
    response
}

fn not_modified(etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    cache_headers(response.headers_mut(), etag);
    response
}

fn cache_headers(headers: &mut HeaderMap, etag: &str) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    // The hash is lowercase hex: always a valid header value.
    if let Ok(etag) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, etag);
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
        "Not found.\n",
    )
        .into_response()
}

fn unavailable(key: &ProfileKey, e: &MediaStoreError) -> Response {
    tracing::error!(key = %key, error = %error_chain(e), "media store unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "The image cannot be read right now. Please try again in a moment.\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests;
