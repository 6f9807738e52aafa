//! Accepting TCP connections for both servers, TLS handshakes for gRPC, and
//! bounding how long a gRPC connection may take to complete the HTTP/2
//! preface and its first request head.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::tls::Tls;

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

/// Accepted gRPC connections, each of which must complete the HTTP/2 preface
/// and its first request head within `head_timeout` of being accepted (see
/// [`HeadDeadline`]), and first its TLS handshake, when `tls` is set, within
/// as long again. Before that no other timeout applies: hyper waits for
/// the preface and for requests forever, so silent or trickling clients would
/// otherwise pile up. The listener closes when `stop` is cancelled, so new
/// connections are refused while the server drains.
pub fn grpc_connections(
    listener: TcpListener,
    head_timeout: Duration,
    tls: Option<Arc<Tls>>,
    stop: CancellationToken,
) -> impl tokio_stream::Stream<Item = io::Result<HeadDeadline<GrpcStream>>> {
    // tonic spawns a task per connection as soon as it has one, so nothing
    // here waits on a client: a slow one cannot hold up the ones behind it.
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        // Handshakes run in their own tasks; this bounds how many at once.
        let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
        while let Some(stream) = stop.run_until_cancelled(accept(&listener, "gRPC")).await {
            let Some(tls) = &tls else {
                let connection = HeadDeadline::new(GrpcStream::Plain(stream), head_timeout);
                if !matches!(
                    stop.run_until_cancelled(tx.send(connection)).await,
                    Some(Ok(()))
                ) {
                    break;
                }
                continue;
            };
            let Some(Ok(permit)) = stop
                .run_until_cancelled(Arc::clone(&handshakes).acquire_owned())
                .await
            else {
                break;
            };
            let (acceptor, tx) = (tls.acceptor(), tx.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let peer = stream
                    .peer_addr()
                    .map_or_else(|_| String::new(), |p| p.to_string());
                match tokio::time::timeout(head_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let certificate_name = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .and_then(crate::tls::certificate_name);
                        let stream = GrpcStream::Tls {
                            stream: Box::new(tls),
                            certificate_name,
                        };
                        let _ = tx.send(HeadDeadline::new(stream, head_timeout)).await;
                    }
                    // Plaintext on a TLS port, an unknown CA, no client
                    // certificate under mTLS: the client sees the alert.
                    Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), Ok)
}

/// TLS handshakes in progress at once; further connections wait in the
/// listen backlog.
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// A gRPC connection, in plaintext or TLS.
pub enum GrpcStream {
    Plain(TcpStream),
    Tls {
        stream: Box<tokio_rustls::server::TlsStream<TcpStream>>,
        /// The caller name on the client's verified certificate.
        certificate_name: Option<Arc<str>>,
    },
}

/// What a request knows of its connection (a request extension).
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote: Option<SocketAddr>,
    /// The caller name on the client's verified certificate, under mTLS.
    pub certificate_name: Option<Arc<str>>,
}

impl Connected for HeadDeadline<GrpcStream> {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        match &self.inner {
            GrpcStream::Plain(s) => PeerInfo {
                remote: s.peer_addr().ok(),
                certificate_name: None,
            },
            GrpcStream::Tls {
                stream,
                certificate_name,
            } => PeerInfo {
                remote: stream.get_ref().0.peer_addr().ok(),
                certificate_name: certificate_name.clone(),
            },
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            GrpcStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            GrpcStream::Tls { stream: $s, .. } => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for GrpcStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for GrpcStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            GrpcStream::Plain(s) => s.is_write_vectored(),
            GrpcStream::Tls { stream, .. } => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// A connection that fails its reads once its deadline has passed, until the
/// client has sent the HTTP/2 preface and a complete first request head;
/// from then on a plain pass-through. hyper closes a connection whose read
/// fails, so this bounds silent clients and clients that trickle the
/// handshake alike, while idle time between requests stays governed by
/// HTTP/2 keepalive and GRPC_MAX_CONNECTION_AGE.
pub struct HeadDeadline<T> {
    inner: T,
    /// `None` once the first request head is in: the timer is released then.
    watch: Option<HeadWatch>,
}

struct HeadWatch {
    // Boxed so that the connection stays Unpin, as tonic requires.
    deadline: Pin<Box<Sleep>>,
    scanner: HeadScanner,
}

impl<T> HeadDeadline<T> {
    /// Starts the clock: the first request head is due `timeout` from now.
    pub fn new(inner: T, timeout: Duration) -> Self {
        HeadDeadline {
            inner,
            watch: Some(HeadWatch {
                deadline: Box::pin(tokio::time::sleep(timeout)),
                scanner: HeadScanner::default(),
            }),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(watch) = this.watch.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        // Polled first, and on every read, so that the timer holds this
        // task's waker: hyper is woken to read, and fail, when it fires.
        if watch.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 request head within REQUEST_HEAD_TIMEOUT",
            )));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        watch.scanner.feed(&buf.filled()[before..])?;
        if watch.scanner.head_complete() {
            this.watch = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The HTTP/2 client connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_HEADERS: u8 = 0x4;

/// Follows the client's opening bytes, in whatever pieces they arrive, just
/// far enough to tell when the first request head is complete: the preface,
/// then frames, skipped by their length, until a header block (HEADERS, plus
/// any CONTINUATION frames) ends. Everything else is left to h2, which
/// rejects what is malformed.
#[derive(Debug, Default)]
struct HeadScanner {
    state: ScanState,
    /// Inside a header block: a HEADERS frame without END_HEADERS was seen.
    in_header_block: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    /// This many bytes of the preface have matched.
    Preface(usize),
    /// Collecting a frame header.
    FrameHeader {
        bytes: [u8; FRAME_HEADER_LEN],
        have: usize,
    },
    /// Skipping a frame's payload; `ends_head` when this frame, once all of
    /// it is in, completes the first request head.
    Payload {
        remaining: usize,
        ends_head: bool,
    },
    HeadComplete,
}

impl Default for ScanState {
    fn default() -> Self {
        ScanState::Preface(0)
    }
}

impl HeadScanner {
    /// Takes the next bytes the client sent. Fails on anything but the
    /// HTTP/2 preface, so such a client is dropped at once.
    fn feed(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                ScanState::Preface(matched) => {
                    let n = bytes.len().min(PREFACE.len() - *matched);
                    if bytes[..n] != PREFACE[*matched..*matched + n] {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "not an HTTP/2 connection preface",
                        ));
                    }
                    *matched += n;
                    bytes = &bytes[n..];
                    if *matched == PREFACE.len() {
                        self.state = Self::next_frame();
                    }
                }
                ScanState::FrameHeader {
                    bytes: header,
                    have,
                } => {
                    let n = bytes.len().min(FRAME_HEADER_LEN - *have);
                    header[*have..*have + n].copy_from_slice(&bytes[..n]);
                    *have += n;
                    bytes = &bytes[n..];
                    if *have == FRAME_HEADER_LEN {
                        let header = *header;
                        self.state = self.frame_started(&header);
                    }
                }
                ScanState::Payload {
                    remaining,
                    ends_head,
                } => {
                    let n = bytes.len().min(*remaining);
                    *remaining -= n;
                    bytes = &bytes[n..];
                    if *remaining == 0 {
                        self.state = Self::frame_done(*ends_head);
                    }
                }
                // Whatever follows is h2's business alone.
                ScanState::HeadComplete => return Ok(()),
            }
        }
        Ok(())
    }

    fn head_complete(&self) -> bool {
        self.state == ScanState::HeadComplete
    }

    fn next_frame() -> ScanState {
        ScanState::FrameHeader {
            bytes: [0; FRAME_HEADER_LEN],
            have: 0,
        }
    }

    /// The state after a frame header: its payload to skip, if any.
    fn frame_started(&mut self, header: &[u8; FRAME_HEADER_LEN]) -> ScanState {
        let length =
            (usize::from(header[0]) << 16) | (usize::from(header[1]) << 8) | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let end_headers = flags & FLAG_END_HEADERS != 0;
        let ends_head = match kind {
            FRAME_HEADERS => {
                self.in_header_block = !end_headers;
                end_headers
            }
            FRAME_CONTINUATION if self.in_header_block => {
                self.in_header_block = !end_headers;
                end_headers
            }
            _ => false,
        };
        if length == 0 {
            Self::frame_done(ends_head)
        } else {
            ScanState::Payload {
                remaining: length,
                ends_head,
            }
        }
    }

    fn frame_done(ends_head: bool) -> ScanState {
        if ends_head {
            ScanState::HeadComplete
        } else {
            Self::next_frame()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let length = u32::try_from(payload.len()).unwrap();
        let mut bytes = length.to_be_bytes()[1..].to_vec();
        bytes.extend_from_slice(&[kind, flags]);
        bytes.extend_from_slice(&stream.to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    fn settings() -> Vec<u8> {
        frame(0x4, 0, 0, &[])
    }

    /// Feeds `bytes` split at `at`, and says whether the head is complete.
    fn scan_split(bytes: &[u8], at: usize) -> io::Result<bool> {
        let mut scanner = HeadScanner::default();
        scanner.feed(&bytes[..at])?;
        scanner.feed(&bytes[at..])?;
        Ok(scanner.head_complete())
    }

    #[test]
    fn the_preface_may_arrive_split_at_any_byte() {
        let mut opening = PREFACE.to_vec();
        opening.extend(settings());
        opening.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, b"head"));
        for at in 0..=PREFACE.len() {
            assert!(scan_split(&opening, at).unwrap(), "split at {at}");
            let mut scanner = HeadScanner::default();
            scanner.feed(&PREFACE[..at]).unwrap();
            scanner.feed(&PREFACE[at..]).unwrap();
            assert!(!scanner.head_complete(), "split at {at}");
        }
    }

    #[test]
    fn the_opening_may_arrive_one_byte_at_a_time() {
        let mut opening = PREFACE.to_vec();
        opening.extend(settings());
        let head = frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, b"head");
        opening.extend(&head);
        let mut scanner = HeadScanner::default();
        for (i, byte) in opening.iter().enumerate() {
            assert!(!scanner.head_complete(), "complete before byte {i}");
            scanner.feed(std::slice::from_ref(byte)).unwrap();
        }
        assert!(scanner.head_complete());
    }

    #[test]
    fn a_header_block_ends_with_the_continuation_that_ends_it() {
        let mut scanner = HeadScanner::default();
        scanner.feed(PREFACE).unwrap();
        scanner.feed(&settings()).unwrap();
        scanner
            .feed(&frame(FRAME_HEADERS, 0, 1, b"first part"))
            .unwrap();
        assert!(!scanner.head_complete());
        scanner
            .feed(&frame(FRAME_CONTINUATION, 0, 1, b"more"))
            .unwrap();
        assert!(!scanner.head_complete());
        scanner
            .feed(&frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 1, b"last"))
            .unwrap();
        assert!(scanner.head_complete());
    }

    #[test]
    fn a_head_is_complete_only_once_all_of_its_frame_is_in() {
        let mut opening = PREFACE.to_vec();
        let head = frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, b"head");
        opening.extend(&head);
        let mut scanner = HeadScanner::default();
        scanner.feed(&opening[..opening.len() - 1]).unwrap();
        assert!(!scanner.head_complete());
        scanner.feed(&opening[opening.len() - 1..]).unwrap();
        assert!(scanner.head_complete());
    }

    #[test]
    fn frames_other_than_a_header_block_do_not_complete_the_head() {
        let mut scanner = HeadScanner::default();
        scanner.feed(PREFACE).unwrap();
        // SETTINGS, PING, WINDOW_UPDATE, a stray CONTINUATION, DATA: all
        // carrying END_HEADERS' bit, none of them a request head.
        for kind in [0x4, 0x6, 0x8, FRAME_CONTINUATION, 0x0] {
            scanner
                .feed(&frame(kind, FLAG_END_HEADERS, 0, &[0; 8]))
                .unwrap();
        }
        assert!(!scanner.head_complete());
    }

    #[test]
    fn anything_but_the_preface_is_refused_at_once() {
        for opening in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"X",
            b"PRI * HTTP/1.1",
            b"\x16\x03\x01\x02\x00",
        ] {
            let error = HeadScanner::default().feed(opening).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{opening:?}");
        }
        // Also when the difference comes in a later read.
        let mut scanner = HeadScanner::default();
        scanner.feed(b"PRI * HTTP/2").unwrap();
        let error = scanner.feed(b".1\r\n").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
