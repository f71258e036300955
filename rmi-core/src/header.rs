//! Frame headers encoded and decoded by hand, byte for byte as postcard does it for [`Header`]'s
//! `Serialize`/`Deserialize` (tests hold the two to each other): a header is on every frame, and
//! going through serde costs several times as much.
//!
//! Postcard's rules used here: an enum starts with its variant index as a varint; `u64` and `u32`
//! are varints (7 bits a byte, least significant first, the high bit set on all but the last);
//! `u8` is one byte; a `[u8; 16]` is its 16 bytes; an `Option` is a byte 0 (none) or 1 (some)
//! followed by the value. Decoding accepts exactly what postcard accepts: a varint of at most 5
//! (`u32`) or 10 (`u64`) bytes whose last byte does not overflow the type.

use crate::ids::{CallId, InterfaceId, ObjectId, OpId};
use crate::message::{Flags, Header, RequestHeader};

/// Most bytes a header takes: variant, call id (10), object id (16), interface id (10), version
/// (5), op (5), flags (1), timeout (1 + 10).
pub(crate) const MAX_LEN: usize = 1 + 10 + 16 + 10 + 5 + 5 + 1 + 11;

/// Bytes under construction, on the stack.
pub(crate) struct Encoded {
    bytes: [u8; MAX_LEN],
    len: usize,
}

impl Encoded {
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn byte(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    fn array(&mut self, bytes: [u8; 16]) {
        self.bytes[self.len..self.len + 16].copy_from_slice(&bytes);
        self.len += 16;
    }

    fn varint(&mut self, value: u64) {
        // Every varint of a header starts at most `MAX_LEN - 10` bytes in: a 10-byte window fits.
        let window = self.bytes[self.len..].first_chunk_mut::<10>().expect("room for a varint");
        self.len += write_varint(window, value);
    }
}

/// `header` as postcard encodes it.
pub(crate) fn encode(header: &Header) -> Encoded {
    let mut out = Encoded { bytes: [0; MAX_LEN], len: 0 };
    match header {
        Header::Request(request) => {
            out.byte(0);
            out.varint(request.call.0);
            out.array(request.object.as_u128().to_le_bytes());
            out.varint(request.interface.0);
            out.varint(u64::from(request.version));
            out.varint(u64::from(request.op.0));
            out.byte(request.flags.0);
            match request.timeout_us {
                None => out.byte(0),
                Some(us) => {
                    out.byte(1);
                    out.varint(us);
                }
            }
        }
        Header::Reply(call) => {
            out.byte(1);
            out.varint(call.0);
        }
        Header::Cancel(call) => {
            out.byte(2);
            out.varint(call.0);
        }
        Header::Ack => out.byte(3),
    }
    out
}

/// Why a header did not decode.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BadHeader {
    /// The bytes ended inside the header.
    Truncated,
    /// A varint too long, or too large for its type.
    BadVarint,
    /// An option tag other than 0 or 1.
    BadOption(u8),
    /// A variant index that names no kind of frame.
    UnknownVariant(u32),
}

impl std::fmt::Display for BadHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadHeader::Truncated => f.write_str("the frame ends inside its header"),
            BadHeader::BadVarint => f.write_str("a varint is too long or too large for its type"),
            BadHeader::BadOption(tag) => write!(f, "option tag {tag} is neither 0 nor 1"),
            BadHeader::UnknownVariant(index) => write!(f, "unknown kind of frame {index}"),
        }
    }
}

/// Reads a header off the front of `bytes`; returns it and the bytes after it.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), BadHeader> {
    let mut r = Reader { bytes };
    let header = match r.varint_u32()? {
        0 => Header::Request(RequestHeader {
            call: CallId(r.varint_u64()?),
            object: ObjectId::from_u128(u128::from_le_bytes(r.array()?)),
            interface: InterfaceId(r.varint_u64()?),
            version: r.varint_u32()?,
            op: OpId(r.varint_u32()?),
            flags: Flags(r.byte()?),
            timeout_us: match r.byte()? {
                0 => None,
                1 => Some(r.varint_u64()?),
                tag => return Err(BadHeader::BadOption(tag)),
            },
        }),
        1 => Header::Reply(CallId(r.varint_u64()?)),
        2 => Header::Cancel(CallId(r.varint_u64()?)),
        3 => Header::Ack,
        index => return Err(BadHeader::UnknownVariant(index)),
    };
    Ok((header, r.bytes))
}

/// Reads one varint `u64` off the front of `bytes`, as postcard does.
pub(crate) fn take_varint_u64(bytes: &[u8]) -> Result<(u64, &[u8]), BadHeader> {
    let mut r = Reader { bytes };
    let value = r.varint_u64()?;
    Ok((value, r.bytes))
}

/// Writes the varint encoding of `value` at the start of `out`; returns its length.
#[allow(clippy::cast_possible_truncation)] // the low 7 bits of each group
fn write_varint(out: &mut [u8; 10], mut value: u64) -> usize {
    for (i, byte) in out.iter_mut().enumerate() {
        if value < 0x80 {
            *byte = value as u8;
            return i + 1;
        }
        *byte = value as u8 | 0x80;
        value >>= 7;
    }
    // A u64 has 64 bits: ten groups of 7 always end the loop above.
    10
}

/// Appends the varint encoding of `value` to `buf`.
pub(crate) fn put_varint(buf: &mut bytes::BytesMut, value: u64) {
    let mut out = [0; 10];
    let len = write_varint(&mut out, value);
    buf.extend_from_slice(&out[..len]);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, BadHeader> {
        let (&first, rest) = self.bytes.split_first().ok_or(BadHeader::Truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    fn array(&mut self) -> Result<[u8; 16], BadHeader> {
        let (first, rest) = self.bytes.split_first_chunk::<16>().ok_or(BadHeader::Truncated)?;
        self.bytes = rest;
        Ok(*first)
    }

    /// A varint of at most `max_len` bytes whose last byte is at most `max_last`.
    fn varint(&mut self, max_len: usize, max_last: u8) -> Result<u64, BadHeader> {
        let bytes = self.bytes;
        let mut value = 0u64;
        for (i, &byte) in bytes.iter().take(max_len).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.bytes = &bytes[i + 1..];
                return if i == max_len - 1 && byte > max_last {
                    Err(BadHeader::BadVarint)
                } else {
                    Ok(value)
                };
            }
        }
        // Out of bytes before the end of the varint, or too long.
        Err(if bytes.len() < max_len { BadHeader::Truncated } else { BadHeader::BadVarint })
    }

    fn varint_u64(&mut self) -> Result<u64, BadHeader> {
        self.varint(10, 1)
    }

    fn varint_u32(&mut self) -> Result<u32, BadHeader> {
        // At most 5 bytes, the last at most 0b1111: the value fits.
        self.varint(5, 0x0f).map(|v| v as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Vec<Header> {
        let edges = [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX];
        let mut all = vec![Header::Ack];
        for (i, &n) in edges.iter().enumerate() {
            all.push(Header::Reply(CallId(n)));
            all.push(Header::Cancel(CallId(n)));
            all.push(Header::Request(RequestHeader {
                call: CallId(n),
                object: ObjectId::from_u128(
                    u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                ),
                interface: InterfaceId(n.rotate_left(17)),
                version: n as u32,
                op: OpId((n >> 7) as u32),
                flags: Flags(i as u8),
                timeout_us: (i % 2 == 0).then_some(n),
            }));
        }
        all
    }

    #[test]
    fn headers_encode_as_postcard_does_and_decode_back() {
        for header in headers() {
            let ours = encode(&header);
            assert_eq!(ours.as_slice(), postcard::to_allocvec(&header).unwrap(), "{header:?}");
            let mut bytes = ours.as_slice().to_vec();
            bytes.extend_from_slice(b"payload");
            assert_eq!(decode(&bytes), Ok((header, &b"payload"[..])));
        }
    }

    /// A small deterministic generator, so a failure can be replayed.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn decoding_accepts_and_refuses_exactly_what_postcard_does() {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        // Valid headers cut short and with bytes changed.
        for header in headers() {
            let bytes = postcard::to_allocvec(&header).unwrap();
            for cut in 0..bytes.len() {
                inputs.push(bytes[..cut].to_vec());
            }
            for at in 0..bytes.len() {
                for value in [0x00, 0x01, 0x02, 0x0f, 0x10, 0x7f, 0x80, 0xff] {
                    let mut changed = bytes.clone();
                    changed[at] = value;
                    inputs.push(changed);
                }
            }
        }
        // Over-long and overflowing varints, in each position.
        for len in 1..12 {
            let mut varint = vec![0xff; len];
            varint.push(0x01);
            inputs.push([&[1][..], &varint].concat());
            inputs.push([&[0x80, 0x80, 0x80, 0x80, 0x10][..], &varint].concat());
        }
        // Random bytes, biased towards small variant indexes.
        let mut state = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let len = (xorshift(&mut state) % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
            if let Some(first) = bytes.first_mut() {
                *first %= 5;
            }
            inputs.push(bytes);
        }
        for input in inputs {
            let theirs = postcard::take_from_bytes::<Header>(&input).ok();
            let ours = decode(&input).ok();
            assert_eq!(ours, theirs, "input {input:02x?}");
        }
    }

    #[test]
    fn varints_read_as_postcard_reads_them() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            let len = (xorshift(&mut state) % 12) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
            assert_eq!(
                take_varint_u64(&bytes).ok(),
                postcard::take_from_bytes::<u64>(&bytes).ok(),
                "{bytes:02x?}"
            );
        }
        for n in [0, 1, 127, 128, u64::MAX] {
            let mut buf = bytes::BytesMut::new();
            put_varint(&mut buf, n);
            assert_eq!(&buf[..], postcard::to_allocvec(&n).unwrap());
        }
    }
}
