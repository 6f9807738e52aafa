//! A lean gRPC client for throughput runs: unary calls written straight as
//! HTTP/2 frames, one prebuilt header block per method, many calls to one
//! write, so that the load costs the shared cores as little as wrk's does
//! for HTTP. Every answer is still read whole and its status checked.
//!
//! It speaks just enough HTTP/2 for unary calls to a well-behaved server:
//! settings, pings, flow control, GOAWAY and RST_STREAM are honoured, and
//! anything it does not expect fails the calls with a status rather than
//! being ignored.

use std::collections::{HashMap, VecDeque};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::Uri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tonic::{Code, Status};

use crate::hpack;

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

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH_PROMISE: u8 = 5;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest window HTTP/2 allows: answers are never held back by ours.
const MAX_WINDOW: u32 = (1 << 31) - 1;
const DEFAULT_WINDOW: u32 = 65_535;

/// One call waiting to be written.
struct Call {
    path: &'static str,
    body: Bytes,
    answer: oneshot::Sender<Result<Bytes, Status>>,
}

/// One HTTP/2 connection, driven by a task of its own; clones share it.
#[derive(Clone)]
pub struct Connection {
    calls: mpsc::UnboundedSender<Call>,
}

impl Connection {
    pub async fn open(addr: &str) -> anyhow::Result<Connection> {
        let base: Uri = addr.parse()?;
        let authority = base
            .authority()
            .ok_or_else(|| anyhow::anyhow!("{addr} names no host and port"))?
            .as_str()
            .to_owned();
        let tcp = TcpStream::connect(&authority).await?;
        tcp.set_nodelay(true)?;
        let (reader, mut writer) = tcp.into_split();
        let mut hello = BytesMut::from(PREFACE);
        // No dynamic header table (answers are read without keeping one),
        // no server push, the largest stream window.
        frame_head(&mut hello, 18, SETTINGS, 0, 0);
        hello.put_u16(0x1);
        hello.put_u32(0);
        hello.put_u16(0x2);
        hello.put_u32(0);
        hello.put_u16(0x4);
        hello.put_u32(MAX_WINDOW);
        frame_head(&mut hello, 4, WINDOW_UPDATE, 0, 0);
        hello.put_u32(MAX_WINDOW - DEFAULT_WINDOW);
        writer.write_all(&hello).await?;
        let (calls, queued) = mpsc::unbounded_channel();
        let driver = Driver::new(authority, reader, writer);
        tokio::spawn(driver.run(queued));
        Ok(Connection { calls })
    }

    /// Sends one framed message to `path` and returns the answer's message
    /// (without its frame header), or the call's status when it is not OK.
    pub async fn unary(&self, path: &'static str, body: Bytes) -> Result<Bytes, Status> {
        let (answer, answered) = oneshot::channel();
        self.calls
            .send(Call { path, body, answer })
            .map_err(|_| Status::unavailable("transport: the connection is closed"))?;
        match answered.await {
            Ok(result) => result,
            Err(_) => Err(Status::unavailable("transport: the connection is closed")),
        }
    }
}

/// Why the connection cannot go on: the server broke the protocol.
struct Broken(String);

/// A call whose answer is being read.
struct Open {
    answer: oneshot::Sender<Result<Bytes, Status>>,
    /// The HTTP status of the answer's head, once read.
    http_status: Option<u16>,
    data: BytesMut,
}

/// What the peer's settings allow.
struct PeerSettings {
    initial_window: u32,
    max_frame: usize,
    max_streams: usize,
}

struct Driver {
    authority: String,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    /// Header blocks by path: every field is a literal that is never
    /// indexed, so a block never changes once built.
    blocks: HashMap<&'static str, Bytes>,
    open: HashMap<u32, Open>,
    waiting: VecDeque<Call>,
    next_stream: u32,
    send_window: i64,
    /// Answer bytes taken in since the connection window was last topped up.
    received: u64,
    peer: PeerSettings,
    /// A header block spread over CONTINUATION frames: stream, flags, bytes.
    partial: Option<(u32, u8, BytesMut)>,
    /// Set once the server sent GOAWAY: no stream above it will be answered.
    going_away: Option<u32>,
    inbox: BytesMut,
    out: BytesMut,
}

impl Driver {
    fn new(authority: String, reader: OwnedReadHalf, writer: OwnedWriteHalf) -> Driver {
        Driver {
            authority,
            reader,
            writer,
            blocks: HashMap::new(),
            open: HashMap::new(),
            waiting: VecDeque::new(),
            next_stream: 1,
            send_window: i64::from(DEFAULT_WINDOW),
            received: 0,
            peer: PeerSettings {
                initial_window: DEFAULT_WINDOW,
                max_frame: 16_384,
                max_streams: usize::MAX,
            },
            partial: None,
            going_away: None,
            inbox: BytesMut::with_capacity(64 * 1024),
            out: BytesMut::with_capacity(64 * 1024),
        }
    }

    async fn run(mut self, mut queued: mpsc::UnboundedReceiver<Call>) {
        let failure = loop {
            let mut arrived = Vec::new();
            tokio::select! {
                read = self.reader.read_buf(&mut self.inbox) => match read {
                    Ok(0) => break Status::unavailable("transport: the server closed the connection"),
                    Ok(_) => {
                        if let Err(Broken(what)) = self.take_frames() {
                            break Status::internal(format!("HTTP/2 protocol error: {what}"));
                        }
                    }
                    Err(e) => break Status::unavailable(format!("transport: {e}")),
                },
                n = queued.recv_many(&mut arrived, 1024) => {
                    if n == 0 {
                        // Every handle is gone: nothing more will be asked.
                        return;
                    }
                    self.waiting.extend(arrived);
                }
            }
            self.start_waiting();
            if !self.out.is_empty() {
                if let Err(e) = self.writer.write_all(&self.out).await {
                    break Status::unavailable(format!("transport: {e}"));
                }
                self.out.clear();
            }
        };
        for (_, open) in self.open.drain() {
            let _ = open.answer.send(Err(failure.clone()));
        }
        queued.close();
        while let Some(call) = self.waiting.pop_front().or_else(|| queued.try_recv().ok()) {
            let _ = call.answer.send(Err(failure.clone()));
        }
    }

    /// Writes as many waiting calls as the server's limits let through.
    fn start_waiting(&mut self) {
        while self.open.len() < self.peer.max_streams {
            let Some(call) = self.waiting.front() else {
                return;
            };
            let len = call.body.len();
            if len as i64 > self.send_window {
                // Held until the server opens the connection window.
                return;
            }
            let Some(call) = self.waiting.pop_front() else {
                return;
            };
            if self.going_away.is_some() || self.next_stream > MAX_WINDOW {
                let _ = call.answer.send(Err(Status::unavailable(
                    "transport: the connection takes no new streams",
                )));
                continue;
            }
            if len > self.peer.max_frame || len > self.peer.initial_window as usize {
                let _ = call.answer.send(Err(Status::internal(
                    "the request is larger than one frame or the stream window",
                )));
                continue;
            }
            let stream = self.next_stream;
            self.next_stream += 2;
            let authority = &self.authority;
            let block = self
                .blocks
                .entry(call.path)
                .or_insert_with(|| header_block(call.path, authority));
            frame_head(&mut self.out, block.len(), HEADERS, END_HEADERS, stream);
            self.out.extend_from_slice(block);
            frame_head(&mut self.out, len, DATA, END_STREAM, stream);
            self.out.extend_from_slice(&call.body);
            self.send_window -= len as i64;
            self.open.insert(
                stream,
                Open {
                    answer: call.answer,
                    http_status: None,
                    data: BytesMut::new(),
                },
            );
        }
    }

    /// Handles every whole frame in the inbox; an error ends the connection.
    fn take_frames(&mut self) -> Result<(), Broken> {
        loop {
            if self.inbox.len() < 9 {
                return Ok(());
            }
            let len = (usize::from(self.inbox[0]) << 16)
                | (usize::from(self.inbox[1]) << 8)
                | usize::from(self.inbox[2]);
            if self.inbox.len() < 9 + len {
                self.inbox.reserve(9 + len - self.inbox.len());
                return Ok(());
            }
            let head = self.inbox.split_to(9);
            let (kind, flags) = (head[3], head[4]);
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & MAX_WINDOW;
            let payload = self.inbox.split_to(len);
            self.frame(kind, flags, stream, payload)?;
        }
    }

    fn frame(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        mut payload: BytesMut,
    ) -> Result<(), Broken> {
        let protocol = |what: &'static str| Broken(what.into());
        if self.partial.is_some() && kind != CONTINUATION {
            return Err(protocol("a header block was interrupted"));
        }
        match kind {
            DATA => {
                self.received += payload.len() as u64;
                if self.received > u64::from(MAX_WINDOW / 2) {
                    // Tops the connection window up again; each stream's own
                    // window is the largest there is and is never drained.
                    frame_head(&mut self.out, 4, WINDOW_UPDATE, 0, 0);
                    self.out.put_u32(self.received as u32);
                    self.received = 0;
                }
                let body = unpad(flags, &mut payload).ok_or_else(|| protocol("bad padding"))?;
                if let Some(open) = self.open.get_mut(&stream) {
                    open.data.extend_from_slice(&body);
                }
                if flags & END_STREAM != 0 {
                    if let Some(open) = self.open.remove(&stream) {
                        let _ = open
                            .answer
                            .send(Err(Status::internal("the answer has no trailers")));
                    }
                }
            }
            HEADERS => {
                let mut block =
                    unpad(flags, &mut payload).ok_or_else(|| protocol("bad padding"))?;
                if flags & PRIORITY != 0 {
                    if block.len() < 5 {
                        return Err(protocol("short priority"));
                    }
                    block.advance(5);
                }
                if flags & END_HEADERS == 0 {
                    self.partial = Some((stream, flags, block));
                } else {
                    self.header_block(stream, flags, &block)?;
                }
            }
            CONTINUATION => {
                let Some((first, first_flags, mut block)) = self.partial.take() else {
                    return Err(protocol("a continuation of nothing"));
                };
                if first != stream {
                    return Err(protocol("a continuation of another stream"));
                }
                block.extend_from_slice(&payload);
                if flags & END_HEADERS == 0 {
                    self.partial = Some((first, first_flags, block));
                } else {
                    self.header_block(stream, first_flags, &block)?;
                }
            }
            RST_STREAM => {
                if let Some(open) = self.open.remove(&stream) {
                    let code = if payload.len() >= 4 {
                        payload.get_u32()
                    } else {
                        2
                    };
                    let status = match code {
                        // REFUSED_STREAM: the server did not start the call.
                        0x7 => Status::unavailable("the server refused the stream"),
                        0x8 => Status::cancelled("the server cancelled the stream"),
                        _ => Status::internal(format!("the server reset the stream ({code:#x})")),
                    };
                    let _ = open.answer.send(Err(status));
                }
            }
            SETTINGS => {
                if flags & ACK != 0 {
                    return Ok(());
                }
                while payload.len() >= 6 {
                    let (id, value) = (payload.get_u16(), payload.get_u32());
                    match id {
                        0x3 => self.peer.max_streams = value as usize,
                        0x4 => self.peer.initial_window = value,
                        0x5 => self.peer.max_frame = value as usize,
                        _ => {}
                    }
                }
                frame_head(&mut self.out, 0, SETTINGS, ACK, 0);
            }
            PING if flags & ACK == 0 => {
                frame_head(&mut self.out, payload.len(), PING, ACK, 0);
                self.out.extend_from_slice(&payload);
            }
            GOAWAY => {
                let last = if payload.len() >= 4 {
                    payload.get_u32() & MAX_WINDOW
                } else {
                    0
                };
                self.going_away = Some(last);
                let unanswered: Vec<u32> =
                    self.open.keys().copied().filter(|s| *s > last).collect();
                for stream in unanswered {
                    if let Some(open) = self.open.remove(&stream) {
                        let _ = open
                            .answer
                            .send(Err(Status::unavailable("the server is going away")));
                    }
                }
            }
            WINDOW_UPDATE if stream == 0 && payload.len() >= 4 => {
                self.send_window += i64::from(payload.get_u32() & MAX_WINDOW);
            }
            PUSH_PROMISE => return Err(protocol("a push the client turned off")),
            _ => {}
        }
        Ok(())
    }

    /// A whole header block: an answer's head, its trailers, or both at once.
    fn header_block(&mut self, stream: u32, flags: u8, block: &[u8]) -> Result<(), Broken> {
        let mut http_status = None;
        let mut grpc_status = None;
        let mut grpc_message = None;
        let mut unreadable = None;
        let mut read = |value: hpack::Raw<'_>| match value.decode() {
            Ok(v) => Some(String::from_utf8_lossy(&v).into_owned()),
            Err(e) => {
                unreadable = Some(e);
                None
            }
        };
        hpack::decode(block, |name, value| match name {
            b":status" => http_status = read(value).and_then(|v| v.parse::<u16>().ok()),
            b"grpc-status" => grpc_status = Some(read(value).and_then(|v| v.parse::<i32>().ok())),
            b"grpc-message" => grpc_message = read(value),
            _ => {}
        })
        .and(unreadable.map_or(Ok(()), Err))
        .map_err(|hpack::Malformed(what)| Broken(format!("header block: {what}")))?;
        let Some(open) = self.open.get_mut(&stream) else {
            return Ok(());
        };
        if http_status.is_some() {
            open.http_status = http_status;
        }
        if flags & END_STREAM == 0 {
            return Ok(());
        }
        let Some(open) = self.open.remove(&stream) else {
            return Ok(());
        };
        let result = match (open.http_status, grpc_status) {
            (Some(200), Some(Some(0))) if open.data.len() >= 5 => Ok(open.data.freeze().slice(5..)),
            (Some(200), Some(Some(0))) => Err(Status::internal("the answer holds no message")),
            (Some(200), Some(Some(code))) => Err(Status::new(
                Code::from_i32(code),
                grpc_message.unwrap_or_default(),
            )),
            (Some(200), _) => Err(Status::unknown("the answer has no valid grpc-status")),
            (other, _) => Err(Status::unknown(format!("HTTP status {other:?}"))),
        };
        let _ = open.answer.send(result);
        Ok(())
    }
}

/// Strips a frame's padding, when it has some.
fn unpad(flags: u8, payload: &mut BytesMut) -> Option<BytesMut> {
    if flags & PADDED == 0 {
        return Some(std::mem::take(payload));
    }
    let pad = usize::from(*payload.first()?);
    payload.advance(1);
    let keep = payload.len().checked_sub(pad)?;
    payload.truncate(keep);
    Some(std::mem::take(payload))
}

fn frame_head(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    out.put_u8((len >> 16) as u8);
    out.put_u8((len >> 8) as u8);
    out.put_u8(len as u8);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream);
}

/// The HPACK block of a gRPC request to `path`: static-table entries and
/// literals never added to the table, so it is the same for every call.
fn header_block(path: &str, authority: &str) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(0x83); // :method: POST
    out.put_u8(0x86); // :scheme: http
    literal(&mut out, 4, path.as_bytes()); // :path
    literal(&mut out, 1, authority.as_bytes()); // :authority
    literal(&mut out, 31, b"application/grpc"); // content-type
    out.put_u8(0x00); // te: trailers, with its name spelt out
    string(&mut out, b"te");
    string(&mut out, b"trailers");
    out.freeze()
}

/// A literal field without indexing whose name is static-table entry `name`.
fn literal(out: &mut BytesMut, name: usize, value: &[u8]) {
    integer(out, 0x00, 4, name);
    string(out, value);
}

fn string(out: &mut BytesMut, value: &[u8]) {
    integer(out, 0x00, 7, value.len());
    out.extend_from_slice(value);
}

/// An HPACK integer with an `bits`-bit prefix under the pattern `first`.
fn integer(out: &mut BytesMut, first: u8, bits: u32, mut value: usize) {
    let max = (1usize << bits) - 1;
    if value < max {
        out.put_u8(first | value as u8);
        return;
    }
    out.put_u8(first | max as u8);
    value -= max;
    while value >= 128 {
        out.put_u8((value % 128 + 128) as u8);
        value /= 128;
    }
    out.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(block: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        hpack::decode(block, |name, value| {
            out.push((
                String::from_utf8(name.to_vec()).unwrap(),
                String::from_utf8(value.decode().unwrap().to_vec()).unwrap(),
            ));
        })
        .unwrap();
        out
    }

    #[test]
    fn the_request_block_decodes_to_a_grpc_request() {
        let block = header_block(GET_ACCOUNT, "127.0.0.1:50051");
        let expected = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", GET_ACCOUNT),
            (":authority", "127.0.0.1:50051"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()));
        assert_eq!(fields(&block), expected);
    }

    #[test]
    fn long_values_take_the_multi_byte_integer_form() {
        let path = format!("/{}", "x".repeat(300));
        let block = header_block(&path, "h:1");
        assert_eq!(fields(&block)[2].1, path);
    }
}
