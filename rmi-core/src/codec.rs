//! Encoding frames: postcard written straight into the outgoing buffer.
//!
//! A frame is a 4-byte big-endian body length followed by the body: a postcard [`Header`] and, for
//! requests and replies, the postcard payload right after it. Decoding reads the header with
//! `take_from_bytes`; what remains is the payload, decoded by the skeleton or stub that knows its type.

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Header};

/// Size of the length prefix.
pub const LEN_PREFIX: usize = 4;

/// A postcard output flavor that appends to a `BytesMut`.
struct Append<'a>(&'a mut BytesMut);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.put_u8(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() <= SHORT {
            // Varints and small ids: byte by byte beats a call to `memcpy`.
            self.0.reserve(data.len());
            for &byte in data {
                self.0.put_u8(byte);
            }
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Slices up to this long (postcard's varints and the like) are copied byte by byte.
const SHORT: usize = 16;

/// Appends the postcard encoding of `value` to `buf`.
///
/// # Errors
/// [`Error::Encode`] if the value's `Serialize` implementation fails (for example a sequence of unknown
/// length); `buf` is then left as it was.
pub fn encode_into<T: Serialize + ?Sized>(buf: &mut BytesMut, value: &T) -> Result<(), Error> {
    let mark = buf.len();
    postcard::serialize_with_flavor(value, Append(buf)).map_err(|e| {
        buf.truncate(mark);
        Error::Encode(e.to_string())
    })
}

/// Decodes a whole payload as `T`; trailing bytes are an error, not silently ignored.
///
/// # Errors
/// [`Error::Decode`] when the bytes are not exactly one `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(Error::Decode(format!("{} unexpected trailing bytes", rest.len()))),
        Err(e) => Err(Error::Decode(e.to_string())),
    }
}

/// Starts a frame in `buf`: a length placeholder and the header. Returns the offset of the frame
/// start, to pass to [`finish_frame`] once the payload has been appended.
pub fn begin_frame(buf: &mut BytesMut, header: &Header) -> usize {
    let start = buf.len();
    // Encoded on the stack (by hand, as postcard would), then copied in with the placeholder.
    let header = crate::header::encode(header);
    let header = header.as_slice();
    buf.reserve(LEN_PREFIX + header.len());
    buf.put_bytes(0, LEN_PREFIX);
    buf.extend_from_slice(header);
    start
}

/// Most bytes a [`Header`] takes encoded.
pub const MAX_HEADER_LEN: usize = crate::header::MAX_LEN;

/// Writes the length prefix of the frame that starts at `start`.
///
/// # Errors
/// [`Error::FrameTooLarge`] if the body exceeds `max_frame` bytes.
pub fn finish_frame(buf: &mut BytesMut, start: usize, max_frame: usize) -> Result<(), Error> {
    let body = buf.len() - start - LEN_PREFIX;
    if body > max_frame || body > u32::MAX as usize {
        return Err(Error::FrameTooLarge { size: body as u64, limit: max_frame as u64 });
    }
    buf[start..start + LEN_PREFIX].copy_from_slice(&(body as u32).to_be_bytes());
    Ok(())
}

/// Splits a frame body into its header and payload.
///
/// # Errors
/// [`Error::Protocol`] if the body does not start with a valid header.
pub fn split_frame(body: &[u8]) -> Result<(Header, &[u8]), Error> {
    crate::header::decode(body).map_err(|e| Error::Protocol(format!("bad frame header: {e}")))
}

/// Appends one [`Header::Ack`] frame acknowledging calls taken from `calls`, as many as fit in
/// `max_frame` bytes of body; returns how many it took. Takes nothing (and writes nothing) if
/// `calls` is empty.
pub fn ack_frame(
    buf: &mut BytesMut,
    calls: &mut impl Iterator<Item = crate::CallId>,
    max_frame: usize,
) -> usize {
    // A varint u64 takes at most 10 bytes; the header 1.
    let room = max_frame.saturating_sub(1) / 10;
    let mut calls = calls.take(room).peekable();
    if calls.peek().is_none() {
        return 0;
    }
    let start = buf.len();
    // The length placeholder and the header of an Ack frame: its variant index, one byte.
    buf.extend_from_slice(&[0, 0, 0, 0, 3]);
    let mut taken = 0;
    for call in calls {
        crate::header::put_varint(buf, call.0);
        taken += 1;
    }
    finish_frame(buf, start, max_frame).expect("sized to fit");
    taken
}

/// The call ids of an [`Header::Ack`] frame's payload, read one at a time (nothing is allocated
/// for them); an error ends the iteration.
pub fn ack_ids(mut payload: &[u8]) -> impl Iterator<Item = Result<crate::CallId, Error>> + '_ {
    std::iter::from_fn(move || {
        if payload.is_empty() {
            return None;
        }
        match crate::header::take_varint_u64(payload) {
            Ok((id, rest)) => {
                payload = rest;
                Some(Ok(crate::CallId(id)))
            }
            Err(e) => {
                payload = &[];
                Some(Err(Error::Protocol(format!("bad acknowledgement: {e}"))))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallId, Flags, InterfaceId, ObjectId, OpId, Outcome, RequestHeader};

    #[test]
    fn the_largest_header_fits_the_header_bound() {
        let header = Header::Request(RequestHeader {
            call: CallId(u64::MAX),
            object: ObjectId::from_u128(u128::MAX),
            interface: InterfaceId::from_name("Calc"),
            version: u32::MAX,
            op: OpId::from_name("add"),
            flags: Flags(u8::MAX),
            timeout_us: Some(u64::MAX),
        });
        let encoded = postcard::to_stdvec(&header).unwrap();
        assert!(encoded.len() <= MAX_HEADER_LEN, "{} bytes", encoded.len());
        let mut buf = BytesMut::new();
        begin_frame(&mut buf, &header);
        assert_eq!(&buf[LEN_PREFIX..], &encoded[..]);
    }

    #[test]
    fn a_frame_round_trips() {
        let header = Header::Request(RequestHeader {
            call: CallId(7),
            object: ObjectId::random(),
            interface: InterfaceId::from_name("Calc"),
            version: 1,
            op: OpId::from_name("add"),
            flags: Flags::default(),
            timeout_us: Some(5_000_000),
        });
        let mut buf = BytesMut::new();
        let start = begin_frame(&mut buf, &header);
        encode_into(&mut buf, &(1i32, "two")).unwrap();
        finish_frame(&mut buf, start, 1024).unwrap();

        let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(len, buf.len() - 4);
        let (decoded, payload) = split_frame(&buf[4..]).unwrap();
        assert_eq!(decoded, header);
        assert_eq!(decode::<(i32, String)>(payload).unwrap(), (1, "two".to_owned()));
    }

    #[test]
    fn ack_frames_round_trip_and_split_at_the_frame_limit() {
        let mut buf = BytesMut::new();
        let mut ids = [1u64, 300, u64::MAX].into_iter().map(CallId);
        assert_eq!(ack_frame(&mut buf, &mut ids, 1024), 3);
        let (header, payload) = split_frame(&buf[4..]).unwrap();
        assert_eq!(header, Header::Ack);
        let read: Vec<_> = ack_ids(payload).map(Result::unwrap).collect();
        assert_eq!(read, [CallId(1), CallId(300), CallId(u64::MAX)]);

        let mut many = (0..100u64).map(CallId);
        let mut buf = BytesMut::new();
        assert_eq!(ack_frame(&mut buf, &mut many, 64), 6, "six 10-byte ids fit in 64 bytes");
        assert!(buf.len() - 4 <= 64);
        assert_eq!(many.next(), Some(CallId(6)), "the rest is left for the next frame");
        assert_eq!(ack_frame(&mut BytesMut::new(), &mut std::iter::empty(), 64), 0);

        let bad: Vec<_> = ack_ids(&[0x01, 0xff]).collect();
        assert!(matches!(bad[..], [Ok(CallId(1)), Err(Error::Protocol(_))]));
    }

    #[test]
    fn oversized_frames_are_refused_when_built() {
        let mut buf = BytesMut::new();
        let start = begin_frame(&mut buf, &Header::Reply(CallId(1)));
        encode_into(&mut buf, &Outcome::<_, ()>::Ok(vec![0u8; 100])).unwrap();
        assert!(matches!(finish_frame(&mut buf, start, 64), Err(Error::FrameTooLarge { limit: 64, .. })));
    }

    #[test]
    fn trailing_bytes_and_garbage_are_decode_errors() {
        let bytes = postcard::to_allocvec(&(1u8, 2u8)).unwrap();
        assert!(matches!(decode::<u8>(&bytes), Err(Error::Decode(_))));
        assert!(matches!(split_frame(&[0xff, 0xff, 0xff]), Err(Error::Protocol(_))));
    }

    #[test]
    fn a_failed_encode_leaves_the_buffer_as_it_was() {
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(None)?;
                seq.serialize_element(&1u8)?;
                seq.end()
            }
        }
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert!(encode_into(&mut buf, &Unsized).is_err());
        assert_eq!(&buf[..], b"abc");
    }
}
