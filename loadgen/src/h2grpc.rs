//! Unary gRPC calls straight over the `h2` crate: one HTTP/2 connection with
//! many calls in flight as its streams, a request head and a framed message
//! built once per method, no tower stack, so that making the load costs a
//! shared machine less than tonic's client does. Every answer is still read
//! whole and its grpc-status checked (from the trailers, or from the head of
//! a trailers-only answer).

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use tokio::net::TcpStream;
use tonic::{Code, Status};

pub const GET_ACCOUNT: &str = "/account.v1.AccountService/GetAccount";
pub const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";

/// The largest window HTTP/2 allows: answers are never held back by ours.
const MAX_WINDOW: u32 = (1 << 31) - 1;

/// The length-prefixed frame of one uncompressed gRPC message: what a call
/// sends as its HTTP/2 body (and what h2load's `-d` file must hold).
pub fn message(m: &impl prost::Message) -> Bytes {
    let len = m.encoded_len();
    let mut out = BytesMut::with_capacity(5 + len);
    out.put_u8(0);
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a buffer of the exact length cannot run out of room.
    let _ = m.encode(&mut out);
    out.freeze()
}

/// The URI of the method at `path` on the server at `addr` (`http://host:port`).
pub fn method_uri(addr: &str, path: &str) -> anyhow::Result<Uri> {
    let base: Uri = addr
        .parse()
        .with_context(|| format!("{addr} is not a URI"))?;
    let authority = base
        .authority()
        .with_context(|| format!("{addr} names no host and port"))?;
    Uri::builder()
        .scheme(base.scheme_str().unwrap_or("http"))
        .authority(authority.as_str())
        .path_and_query(path)
        .build()
        .with_context(|| format!("{path} is not a path"))
}

/// One HTTP/2 connection, driven by a task of its own; clones share it.
#[derive(Clone)]
pub struct Connection {
    send: SendRequest<Bytes>,
}

impl Connection {
    /// Connects to the host and port of `uri` with HTTP/2 prior knowledge.
    pub async fn open(uri: &Uri) -> anyhow::Result<Connection> {
        let authority = uri
            .authority()
            .with_context(|| format!("{uri} names no host and port"))?
            .as_str();
        let tcp = TcpStream::connect(authority)
            .await
            .with_context(|| format!("cannot connect to {authority}"))?;
        tcp.set_nodelay(true)?;
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(MAX_WINDOW)
            .initial_connection_window_size(MAX_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(tcp)
            .await
            .with_context(|| format!("no HTTP/2 handshake with {authority}"))?;
        // Its end shows on every call still in flight, as a status.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { send })
    }

    /// Sends one framed message to `uri` and returns the answer's message
    /// (without its frame prefix), or the call's status when it is not OK.
    pub async fn unary(&self, uri: &Uri, body: Bytes) -> Result<Bytes, Status> {
        let mut send = self.send.clone().ready().await.map_err(transport)?;
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        let (answer, mut stream) = send.send_request(request, false).map_err(transport)?;
        stream.send_data(body, true).map_err(transport)?;
        let (head, mut body) = answer.await.map_err(transport)?.into_parts();
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(transport)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(transport)?;
        outcome(head.status, &head.headers, trailers.as_ref(), data.freeze())
    }
}

/// What an answer amounts to: its message when the call is OK, else its
/// status. A trailers-only answer carries grpc-status in its head.
// A call's status is what every caller of this client records, as tonic's
// own calls return it; boxing it would only move it to the heap per failure.
#[allow(clippy::result_large_err)]
fn outcome(
    http: StatusCode,
    head: &HeaderMap,
    trailers: Option<&HeaderMap>,
    data: Bytes,
) -> Result<Bytes, Status> {
    if http != StatusCode::OK {
        return Err(Status::unknown(format!("HTTP status {http}")));
    }
    let fields = trailers.filter(|t| t.contains_key("grpc-status"));
    let fields = fields.unwrap_or(head);
    let code = fields
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .ok_or_else(|| Status::unknown("the answer has no valid grpc-status"))?;
    if code != 0 {
        let message = fields
            .get("grpc-message")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return Err(Status::new(Code::from_i32(code), message));
    }
    match data.get(..5) {
        Some([0, len @ ..])
            if u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize + 5 == data.len() =>
        {
            Ok(data.slice(5..))
        }
        Some(_) => Err(Status::internal(
            "the answer is not one uncompressed message",
        )),
        None => Err(Status::internal("the answer holds no message")),
    }
}

/// An HTTP/2 failure as the status a gRPC client would report.
fn transport(e: h2::Error) -> Status {
    match e.reason() {
        Some(h2::Reason::REFUSED_STREAM) => Status::unavailable("the server refused the stream"),
        Some(h2::Reason::CANCEL) => Status::cancelled("the server cancelled the stream"),
        _ if e.is_io() || e.is_go_away() => Status::unavailable(format!("transport: {e}")),
        _ => Status::internal(format!("HTTP/2: {e}")),
    }
}

#[cfg(test)]
mod tests;
