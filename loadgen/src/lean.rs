//! A lean gRPC client for throughput runs: unary calls as single HTTP/2
//! streams on a connection of its own, with no tower stack between the call
//! and the socket, so that the load costs the shared cores as little as wrk's
//! does for HTTP. Answers are read whole and their status checked.

use bytes::{BufMut, Bytes, BytesMut};
use http::uri::PathAndQuery;
use http::{Request, Uri};
use tokio::net::TcpStream;
use tonic::{Code, Status};

pub const GET_ACCOUNT: &str = "/account.v1.AccountService/GetAccount";
pub const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";

/// The length-prefixed frame of one uncompressed gRPC message.
pub fn message(m: &impl prost::Message) -> Bytes {
    let len = m.encoded_len();
    let mut out = BytesMut::with_capacity(5 + len);
    out.put_u8(0);
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a buffer of the exact length cannot run out of room.
    let _ = m.encode(&mut out);
    out.freeze()
}

/// One HTTP/2 connection; clones share it.
#[derive(Clone)]
pub struct Connection {
    send: h2::client::SendRequest<Bytes>,
    base: Uri,
}

impl Connection {
    pub async fn open(addr: &str) -> anyhow::Result<Connection> {
        let base: Uri = addr.parse()?;
        let authority = base
            .authority()
            .ok_or_else(|| anyhow::anyhow!("{addr} names no host and port"))?;
        let tcp = TcpStream::connect(authority.as_str()).await?;
        tcp.set_nodelay(true)?;
        let (send, connection) = h2::client::handshake(tcp).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { send, base })
    }

    /// Sends one framed message to `path` and returns the answer's message
    /// (without its frame header), or the call's status when it is not OK.
    pub async fn unary(&self, path: &'static str, body: Bytes) -> Result<Bytes, Status> {
        let transport = |e: h2::Error| Status::unavailable(format!("transport: {e}"));
        let mut uri = self.base.clone().into_parts();
        uri.path_and_query = Some(PathAndQuery::from_static(path));
        let uri = Uri::from_parts(uri).map_err(|e| Status::internal(e.to_string()))?;
        let request = Request::post(uri)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut send = self.send.clone().ready().await.map_err(transport)?;
        let (answer, mut stream) = send.send_request(request, false).map_err(transport)?;
        stream.send_data(body, true).map_err(transport)?;
        let (head, mut body) = answer.await.map_err(transport)?.into_parts();
        // A trailers-only answer (every error) carries its status in the head.
        if let Some(status) = grpc_status(&head.headers) {
            return Err(status);
        }
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(transport)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(transport)?;
        match trailers.as_ref().and_then(grpc_status) {
            Some(status) => Err(status),
            None if trailers.is_none() => Err(Status::internal("the answer has no trailers")),
            None => {
                if data.len() < 5 {
                    return Err(Status::internal("the answer holds no message"));
                }
                Ok(data.freeze().slice(5..))
            }
        }
    }
}

/// The status in `grpc-status`, or `None` when it says OK or is absent.
fn grpc_status(headers: &http::HeaderMap) -> Option<Status> {
    let value = headers.get("grpc-status")?;
    let code = value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32);
    (code != Code::Ok).then(|| Status::new(code, ""))
}
