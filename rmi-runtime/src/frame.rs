//! Reading frames off a byte stream without trusting the peer's length prefix, and the buffers
//! outgoing frames are built in.

use std::cell::RefCell;
use std::fmt;
use std::io;

use bytes::{Buf, Bytes, BytesMut};
use rmi_core::codec::LEN_PREFIX;
use tokio_util::codec::Decoder;

/// Bytes reserved ahead of what has arrived while a frame is incomplete, at least: at most as
/// many as have arrived, when that is more.
///
/// The buffer grows with the bytes the peer actually sends (at most doubling them), never with
/// the length it claims.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// Size of the per-thread chunks small outgoing frames are cut from.
pub(crate) const ARENA_CHUNK: usize = 32 * 1024;
/// Room a frame starts with; it grows (into an allocation of its own) if it needs more.
pub(crate) const FRAME_ROOM: usize = 256;

thread_local! {
    /// The chunk this thread cuts outgoing frames from: frames share its allocation rather than
    /// allocating one each. A chunk is reused once every frame cut from it is gone; a frame kept
    /// long (a request kept for resending, a reply a peer does not read) keeps its chunk.
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Builds an outgoing frame with `write`, which appends it to the buffer it is given: in this
/// thread's arena, so a small frame costs no allocation of its own. Returns the frame and what
/// `write` returned.
pub(crate) fn build<R>(write: impl FnOnce(&mut BytesMut) -> R) -> (Bytes, R) {
    ARENA.with(|arena| match arena.try_borrow_mut() {
        Ok(mut arena) => {
            // Left over only if an earlier `write` panicked.
            arena.clear();
            make_room(&mut arena);
            let result = write(&mut arena);
            let frame = arena.split().freeze();
            if arena.capacity() > 2 * ARENA_CHUNK {
                // A large frame grew the arena: do not cut small frames from (and keep alive)
                // what is left of its allocation.
                *arena = BytesMut::new();
            }
            (frame, result)
        }
        // `write` itself builds a frame (it encodes something that sends one).
        Err(_) => {
            let mut own = BytesMut::with_capacity(FRAME_ROOM);
            let result = write(&mut own);
            (own.freeze(), result)
        }
    })
}

/// A buffer with [`FRAME_ROOM`] bytes of room for a frame built over time (a reply, written when
/// its call ends), cut from this thread's arena.
pub(crate) fn buffer() -> BytesMut {
    ARENA.with(|arena| match arena.try_borrow_mut() {
        Ok(mut arena) => {
            arena.clear();
            make_room(&mut arena);
            arena.resize(FRAME_ROOM, 0);
            let mut buf = arena.split_to(FRAME_ROOM);
            buf.clear();
            buf
        }
        Err(_) => BytesMut::with_capacity(FRAME_ROOM),
    })
}

/// Makes sure the arena has [`FRAME_ROOM`] bytes of room: its chunk again if every frame cut from
/// it is gone, else a new chunk.
fn make_room(arena: &mut BytesMut) {
    if arena.capacity() - arena.len() < FRAME_ROOM && !arena.try_reclaim(ARENA_CHUNK) {
        *arena = BytesMut::with_capacity(ARENA_CHUNK);
    }
}

/// Why reading a frame failed. Every case closes the connection.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The transport failed.
    Io(io::Error),
    /// The peer announced a frame larger than the limit.
    TooLarge { size: u64, limit: usize },
    /// The stream ended inside a frame.
    Truncated { have: usize, need: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "read failed: {e}"),
            FrameError::TooLarge { size, limit } => {
                write!(f, "peer announced a frame of {size} bytes, over the limit of {limit} bytes")
            }
            FrameError::Truncated { have, need } => {
                write!(f, "peer closed the stream inside a frame ({have} of {need} bytes)")
            }
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// Splits a byte stream into frame bodies: a 4-byte big-endian length, then that many bytes.
///
/// The length is checked against the limit as soon as its four bytes have arrived, before anything
/// is reserved for the body; while a body is incomplete at most [`READ_CHUNK`] bytes, or as many
/// as have arrived if that is more, are reserved beyond what has arrived.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    max_frame_len: usize,
}

impl FrameDecoder {
    pub(crate) fn new(max_frame_len: usize) -> Self {
        Self { max_frame_len }
    }
}

impl Decoder for FrameDecoder {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = src.get(..LEN_PREFIX) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let too_large = || FrameError::TooLarge { size: u64::from(len), limit: self.max_frame_len };
        // `len` may not fit a 32-bit `usize` with its prefix: checked, not assumed.
        let body = usize::try_from(len).map_err(|_| too_large())?;
        if body > self.max_frame_len {
            return Err(too_large());
        }
        let need = body.checked_add(LEN_PREFIX).ok_or_else(too_large)?;
        if src.len() < need {
            // Room for the rest of the frame, but never more than has arrived already (or a
            // chunk): a large frame doubles the buffer as its bytes come, in few reads.
            src.reserve((need - src.len()).min(src.len().max(READ_CHUNK)));
            return Ok(None);
        }
        let mut frame = src.split_to(need);
        frame.advance(LEN_PREFIX);
        if need > 4 * READ_CHUNK || src.capacity() > 4 * READ_CHUNK {
            // A large frame grew the buffer: read on in a buffer of its own, so that the large
            // allocation belongs to the frame alone and goes when it does (the server drops a
            // request's frame once its arguments are decoded).
            *src = BytesMut::from(&src[..]);
        }
        Ok(Some(frame.freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => {
                let need = match src.get(..LEN_PREFIX) {
                    Some(p) => {
                        let len = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                        usize::try_from(len).map_or(usize::MAX, |len| len.saturating_add(LEN_PREFIX))
                    }
                    None => LEN_PREFIX,
                };
                Err(FrameError::Truncated { have: src.len(), need })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> FrameDecoder {
        FrameDecoder::new(1024)
    }

    #[test]
    fn whole_frames_come_out_one_at_a_time() {
        let mut src = BytesMut::from(&[0, 0, 0, 2, b'h', b'i', 0, 0, 0, 0, 0, 0, 0, 1][..]);
        let mut d = decoder();
        assert_eq!(d.decode(&mut src).unwrap().unwrap(), Bytes::from_static(b"hi"));
        assert_eq!(d.decode(&mut src).unwrap().unwrap(), Bytes::new());
        assert!(d.decode(&mut src).unwrap().is_none());
        assert_eq!(&src[..], &[0, 0, 0, 1]);
    }

    #[test]
    fn an_oversized_length_is_refused_before_any_reservation() {
        let mut src = BytesMut::with_capacity(8);
        src.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        let cap = src.capacity();
        let err = decoder().decode(&mut src).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { size: 0xffff_ffff, limit: 1024 }), "{err}");
        assert_eq!(src.capacity(), cap);
    }

    #[test]
    fn reservation_is_bounded_by_what_arrived_plus_a_chunk() {
        let mut d = FrameDecoder::new(u32::MAX as usize);
        let mut src = BytesMut::new();
        src.extend_from_slice(&(u32::MAX - 1).to_be_bytes());
        assert!(d.decode(&mut src).unwrap().is_none());
        assert!(src.capacity() <= LEN_PREFIX + READ_CHUNK + 64, "reserved {}", src.capacity());
    }

    #[test]
    fn reservation_grows_with_what_arrived_not_with_the_claim() {
        let mut d = FrameDecoder::new(u32::MAX as usize);
        let mut src = BytesMut::new();
        src.extend_from_slice(&(u32::MAX - 1).to_be_bytes());
        let arrived = 200 * 1024;
        src.extend_from_slice(&vec![7u8; arrived]);
        assert!(d.decode(&mut src).unwrap().is_none());
        // Room for about as much again as arrived (the vector may round up to twice that).
        let limit = 4 * (LEN_PREFIX + arrived);
        assert!(src.capacity() >= 2 * arrived && src.capacity() <= limit, "reserved {}", src.capacity());
    }

    #[test]
    fn a_large_frame_owns_its_allocation_so_dropping_it_frees_the_memory() {
        let mut d = FrameDecoder::new(1 << 21);
        let body = 1 << 20;
        // The buffer holds the frame and the start of the next one, with no room to spare.
        let mut src = BytesMut::with_capacity(LEN_PREFIX + body + 6);
        src.extend_from_slice(&u32::try_from(body).unwrap().to_be_bytes());
        src.extend_from_slice(&vec![3u8; body]);
        src.extend_from_slice(&[0, 0, 0, 2, b'h', b'i']);
        let frame = d.decode(&mut src).unwrap().unwrap();
        assert_eq!(frame.len(), body);
        assert!(frame.is_unique(), "the read buffer still shares the frame's allocation");
        assert_eq!(d.decode(&mut src).unwrap().unwrap(), Bytes::from_static(b"hi"));
    }

    #[test]
    fn small_frames_share_an_arena_chunk_and_large_ones_do_not_keep_it() {
        std::thread::spawn(|| {
            let (a, ()) = build(|buf| buf.extend_from_slice(b"first"));
            let (b, ()) = build(|buf| buf.extend_from_slice(b"second"));
            assert_eq!((&a[..], &b[..]), (&b"first"[..], &b"second"[..]));
            // Cut one after the other from the same allocation.
            assert_eq!(b.as_ptr(), a.as_ptr().wrapping_add(a.len()));
            let mut reply = buffer();
            assert_eq!((reply.len(), reply.capacity()), (0, FRAME_ROOM));
            reply.extend_from_slice(b"reply");
            assert_eq!(reply.as_ptr(), b.as_ptr().wrapping_add(b.len()));

            // A frame larger than the room grows on its own; the arena lets go of the large
            // allocation.
            let (big, ()) = build(|buf| buf.extend_from_slice(&vec![1u8; 4 * ARENA_CHUNK]));
            assert_eq!(big.len(), 4 * ARENA_CHUNK);
            ARENA.with(|arena| assert!(arena.borrow().capacity() <= 2 * ARENA_CHUNK));

            // Building a frame while building one (an encoder that sends) works too.
            let (outer, inner) = build(|buf| {
                buf.extend_from_slice(b"outer");
                build(|buf| buf.extend_from_slice(b"inner")).0
            });
            assert_eq!((&outer[..], &inner[..]), (&b"outer"[..], &b"inner"[..]));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn eof_inside_a_frame_is_an_error_and_clean_eof_is_not() {
        let mut d = decoder();
        let mut src = BytesMut::from(&[0, 0, 0, 9, 1, 2][..]);
        let err = d.decode_eof(&mut src).unwrap_err();
        assert!(matches!(err, FrameError::Truncated { have: 6, need: 13 }), "{err}");
        let mut src = BytesMut::from(&[0, 0][..]);
        assert!(matches!(d.decode_eof(&mut src), Err(FrameError::Truncated { have: 2, need: 4 })));
        assert!(d.decode_eof(&mut BytesMut::new()).unwrap().is_none());
    }
}
