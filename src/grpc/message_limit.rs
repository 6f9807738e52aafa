//! The request size bound: a message over it is refused with
//! RESOURCE_EXHAUSTED, the code gRPC's status table gives for it, from its
//! length prefix and before any of it is buffered.
//!
//! tonic refuses such a message as well, but with OUT_OF_RANGE and nothing
//! but its message text to tell that refusal from others. Reading the
//! five-byte prefix of each message (a compression flag, then the length,
//! big-endian) as the body streams past decides by the length itself.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use hyper::body::{Body, Bytes, Frame, SizeHint};
use tonic::Status;

/// A gRPC message's prefix: compression flag and length.
const PREFIX_BYTES: usize = 5;

/// A request body that fails, with the status tonic passes on, at the
/// prefix of a message longer than its limit.
pub struct MessageLimit {
    inner: tonic::body::Body,
    prefixes: Prefixes,
}

impl MessageLimit {
    pub fn new(inner: tonic::body::Body, limit: usize) -> Self {
        MessageLimit {
            inner,
            prefixes: Prefixes::new(limit),
        }
    }
}

impl Body for MessageLimit {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(data) = frame.as_ref().and_then(|f| f.as_ref().ok()?.data_ref()) {
            if let Err(refused) = this.prefixes.scan(data) {
                return Poll::Ready(Some(Err(refused)));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Follows the messages of a body chunk by chunk, wherever the chunks
/// split them.
#[derive(Debug)]
struct Prefixes {
    limit: usize,
    prefix: [u8; PREFIX_BYTES],
    /// Bytes of the current prefix seen so far.
    filled: usize,
    /// Bytes of the current message still to come.
    remaining: usize,
}

impl Prefixes {
    fn new(limit: usize) -> Self {
        Prefixes {
            limit,
            prefix: [0; PREFIX_BYTES],
            filled: 0,
            remaining: 0,
        }
    }

    fn scan(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let skipped = self.remaining.min(data.len());
                self.remaining -= skipped;
                data = &data[skipped..];
                continue;
            }
            let taken = (PREFIX_BYTES - self.filled).min(data.len());
            self.prefix[self.filled..self.filled + taken].copy_from_slice(&data[..taken]);
            self.filled += taken;
            data = &data[taken..];
            if self.filled == PREFIX_BYTES {
                self.filled = 0;
                let [_, a, b, c, d] = self.prefix;
                let length = u32::from_be_bytes([a, b, c, d]);
                let length = usize::try_from(length).unwrap_or(usize::MAX);
                if length > self.limit {
                    return Err(Status::resource_exhausted(format!(
                        "request message larger than {} bytes",
                        self.limit
                    )));
                }
                self.remaining = length;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(length: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.resize(PREFIX_BYTES + length as usize, 7);
        bytes
    }

    #[test]
    fn messages_within_the_limit_pass_however_they_are_split() {
        let mut body = message(10);
        body.extend(message(0));
        body.extend(message(16));
        for chunk in [1, 2, 5, 6, 64] {
            let mut prefixes = Prefixes::new(16);
            for part in body.chunks(chunk) {
                prefixes.scan(part).unwrap();
            }
            assert_eq!((prefixes.filled, prefixes.remaining), (0, 0), "{chunk}");
        }
    }

    #[test]
    fn a_longer_message_is_refused_at_its_prefix() {
        let mut body = message(3);
        body.extend_from_slice(&message(17)[..PREFIX_BYTES]);
        for chunk in [1, 3, 64] {
            let mut prefixes = Prefixes::new(16);
            let refused = body
                .chunks(chunk)
                .find_map(|part| prefixes.scan(part).err())
                .expect("refused");
            assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
            assert_eq!(refused.message(), "request message larger than 16 bytes");
        }
    }
}
