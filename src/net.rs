//! Accepting TCP connections for both servers.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The next connection, with Nagle off (answers are small and latency-bound).
/// A failed accept (out of file descriptors and the like) is logged and
/// retried after a short pause rather than in a busy loop.
pub async fn accept(listener: &TcpListener, server: &'static str) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return stream;
            }
            Err(e) => {
                tracing::warn!(server, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accepted gRPC connections, each handed on only once the client has sent
/// something: a connection that stays silent for `timeout` is dropped, so idle
/// sockets cannot pile up before the HTTP/2 handshake (where no other timeout
/// applies).
pub fn speaking_connections(
    listener: TcpListener,
    timeout: Duration,
    stop: CancellationToken,
) -> impl tokio_stream::Stream<Item = std::io::Result<TcpStream>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<TcpStream>(64);
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = stop.cancelled() => break,
                stream = accept(&listener, "gRPC") => stream,
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                // peek, not readable(): readiness may be reported spuriously.
                let mut first = [0u8; 1];
                if let Ok(Ok(1)) = tokio::time::timeout(timeout, stream.peek(&mut first)).await {
                    let _ = tx.send(stream).await;
                }
            });
        }
    });
    tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), Ok)
}
