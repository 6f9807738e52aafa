//! Just enough HPACK (RFC 7541) to read a gRPC answer's head and trailers
//! on a connection whose dynamic table is turned off (SETTINGS_HEADER_TABLE_SIZE
//! of 0): static-table references, literals, and Huffman-coded strings.

use std::borrow::Cow;
use std::sync::OnceLock;

/// A header block this decoder cannot read.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// A string as it came on the wire, decoded on demand: most values are
/// never looked at.
pub struct Raw<'a> {
    huffman: bool,
    bytes: &'a [u8],
}

impl<'a> Raw<'a> {
    pub fn decode(&self) -> Result<Cow<'a, [u8]>, Malformed> {
        if self.huffman {
            huffman(self.bytes).map(Cow::Owned)
        } else {
            Ok(Cow::Borrowed(self.bytes))
        }
    }
}

/// Calls `field(name, value)` for each field of `block`, in order.
pub fn decode<'a>(
    mut block: &'a [u8],
    mut field: impl FnMut(&[u8], Raw<'a>),
) -> Result<(), Malformed> {
    while let Some(&first) = block.first() {
        if first & 0x80 != 0 {
            let index = integer(&mut block, 7)?;
            let (name, value) = entry(index)?;
            field(
                name,
                Raw {
                    huffman: false,
                    bytes: value,
                },
            );
            continue;
        }
        if first & 0xe0 == 0x20 {
            // A dynamic table size update: only ever down to the zero asked for.
            if integer(&mut block, 5)? != 0 {
                return Err(Malformed("the dynamic table was turned back on"));
            }
            continue;
        }
        // Literals, with incremental indexing (01), without (0000) or never
        // indexed (0001). With a table of size 0 an indexed literal is
        // evicted as soon as it is added, so all three read the same.
        let bits = if first & 0xc0 == 0x40 { 6 } else { 4 };
        let index = integer(&mut block, bits)?;
        let name = if index == 0 {
            let raw = string(&mut block)?;
            raw.decode()?
        } else {
            Cow::Borrowed(entry(index)?.0)
        };
        let value = string(&mut block)?;
        field(&name, value);
    }
    Ok(())
}

fn entry(index: usize) -> Result<(&'static [u8], &'static [u8]), Malformed> {
    index
        .checked_sub(1)
        .and_then(|i| STATIC.get(i).copied())
        .ok_or(Malformed("a reference past the static table"))
}

/// An integer with an `bits`-bit prefix (RFC 7541, 5.1).
fn integer(block: &mut &[u8], bits: u32) -> Result<usize, Malformed> {
    let short = Malformed("a truncated integer");
    let (&first, mut rest) = block.split_first().ok_or(short)?;
    let max = (1usize << bits) - 1;
    let mut value = usize::from(first) & max;
    if value == max {
        let mut shift = 0;
        loop {
            let (&byte, tail) = rest.split_first().ok_or(Malformed("a truncated integer"))?;
            rest = tail;
            if shift > 28 {
                return Err(Malformed("an integer too large"));
            }
            value += usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    *block = rest;
    Ok(value)
}

fn string<'a>(block: &mut &'a [u8]) -> Result<Raw<'a>, Malformed> {
    let huffman = block.first().is_some_and(|b| b & 0x80 != 0);
    let len = integer(block, 7)?;
    if block.len() < len {
        return Err(Malformed("a truncated string"));
    }
    let (bytes, rest) = block.split_at(len);
    *block = rest;
    Ok(Raw { huffman, bytes })
}

/// The canonical Huffman code of RFC 7541 Appendix B, rebuilt from its
/// code lengths: symbols in order of length, then of value.
struct Code {
    count: [u32; 31],
    symbols: Vec<u16>,
}

fn code() -> &'static Code {
    static CODE: OnceLock<Code> = OnceLock::new();
    CODE.get_or_init(|| {
        let length = |symbol: u16| {
            if symbol == 256 {
                30
            } else {
                LENGTHS[usize::from(symbol)]
            }
        };
        let mut symbols: Vec<u16> = (0..=256).collect();
        symbols.sort_by_key(|&s| (length(s), s));
        let mut count = [0u32; 31];
        for &s in &symbols {
            count[usize::from(length(s))] += 1;
        }
        Code { count, symbols }
    })
}

/// Decodes a Huffman-coded string; its padding must be the end-of-string
/// code's first bits (all ones), shorter than a byte.
fn huffman(bytes: &[u8]) -> Result<Vec<u8>, Malformed> {
    let Code { count, symbols } = code();
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5);
    // The code read so far, its length, the first code of that length and
    // how many symbols have shorter codes.
    let (mut code, mut len, mut first, mut before) = (0u32, 0usize, 0u32, 0u32);
    for byte in bytes {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            first <<= 1;
            if len > 30 {
                return Err(Malformed("a Huffman code too long"));
            }
            if code - first < count[len] {
                let symbol = symbols[(before + code - first) as usize];
                if symbol == 256 {
                    return Err(Malformed("an end-of-string code inside a string"));
                }
                out.push(symbol as u8);
                (code, len, first, before) = (0, 0, 0, 0);
            } else {
                before += count[len];
                first += count[len];
            }
        }
    }
    if len > 7 || code != (1 << len) - 1 {
        return Err(Malformed("bad Huffman padding"));
    }
    Ok(out)
}

static STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Code lengths of bytes 0–255; the end-of-string code is 30 bits.
static LENGTHS: [u8; 256] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(block: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        decode(block, |name, value| {
            let value = value.decode().unwrap();
            out.push((
                String::from_utf8(name.to_vec()).unwrap(),
                String::from_utf8(value.to_vec()).unwrap(),
            ));
        })
        .unwrap();
        out
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn reads_the_rfc_request_with_huffman_coding() {
        // RFC 7541, C.4.1.
        let block = hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff");
        assert_eq!(
            fields(&block),
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn reads_the_rfc_response_with_huffman_coding() {
        // RFC 7541, C.6.1.
        let block = hex(
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        );
        assert_eq!(
            fields(&block),
            [
                (":status", "302"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        // A dynamic-table reference, a size update back up, a cut string.
        assert!(decode(&[0xbe], |_, _| {}).is_err());
        assert!(decode(&[0x3f, 0xe1, 0x1f], |_, _| {}).is_err());
        assert!(decode(&[0x00, 0x05, b'a'], |_, _| {}).is_err());
        // A whole byte of padding.
        let mut out = Vec::new();
        decode(&[0x00, 0x81, 0x1f, 0x82, 0x1f, 0xff], |name, v| {
            out.push((name.to_vec(), v.decode().is_ok()))
        })
        .unwrap();
        assert_eq!(out, [(b"a".to_vec(), false)]);
    }
}
