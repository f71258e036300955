//! Byte strings for generated code: `Vec<u8>` arguments and results in one copy.
//!
//! serde sends a `Vec<u8>` as a sequence of `u8`, which postcard writes and reads one byte at a time.
//! A postcard byte string (`serialize_bytes`) is a varint length followed by the raw bytes: exactly
//! the same bytes on the wire as that sequence, written and read with one copy. `#[remote]` wraps
//! arguments and results whose type is `Vec<u8>` in these types; a peer that sends or expects the
//! plain sequence reads and writes the same payloads.

use std::fmt;

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

/// Most bytes a [`ByteBuf`] reserves ahead from a sequence's announced length: the sender chooses
/// that number, so more is reserved only as bytes actually arrive.
const MAX_PREALLOCATION: usize = 4096;

/// Borrowed bytes that serialize as a byte string; what `#[remote]` sends for a `Vec<u8>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsBytes<'a>(pub &'a [u8]);

impl Serialize for AsBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Owned bytes that serialize as a byte string and deserialize from a byte string or a sequence of
/// `u8`; what `#[remote]` receives for a `Vec<u8>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ByteBuf(pub Vec<u8>);

impl Serialize for ByteBuf {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(ByteBufVisitor)
    }
}

struct ByteBufVisitor;

impl<'de> Visitor<'de> for ByteBufVisitor {
    type Value = ByteBuf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
        Ok(ByteBuf(v.to_vec()))
    }

    fn visit_borrowed_bytes<E: serde::de::Error>(self, v: &'de [u8]) -> Result<ByteBuf, E> {
        Ok(ByteBuf(v.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
        Ok(ByteBuf(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOCATION));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(ByteBuf(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENGTHS: [usize; 7] = [0, 1, 127, 128, 300, 16_384, 70_000];

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn byte_strings_encode_like_sequences_of_u8() {
        for len in LENGTHS {
            let v = bytes(len);
            let plain = postcard::to_allocvec(&v).unwrap();
            assert_eq!(postcard::to_allocvec(&AsBytes(&v)).unwrap(), plain, "AsBytes, {len} bytes");
            assert_eq!(postcard::to_allocvec(&ByteBuf(v.clone())).unwrap(), plain, "ByteBuf, {len} bytes");
            // Inside an argument tuple, as the client stub sends them.
            assert_eq!(
                postcard::to_allocvec(&(7u32, AsBytes(&v), "x")).unwrap(),
                postcard::to_allocvec(&(7u32, &v, "x")).unwrap(),
            );
        }
    }

    #[test]
    fn byte_bufs_decode_what_a_plain_vec_encoded() {
        for len in LENGTHS {
            let v = bytes(len);
            let plain = postcard::to_allocvec(&(v.clone(), 9u8)).unwrap();
            let (buf, n) = crate::codec::decode::<(ByteBuf, u8)>(&plain).unwrap();
            assert_eq!((buf.0, n), (v.clone(), 9), "{len} bytes");
            // And the other way round: a plain `Vec<u8>` decodes what `AsBytes` encoded.
            let sent = postcard::to_allocvec(&AsBytes(&v)).unwrap();
            assert_eq!(crate::codec::decode::<Vec<u8>>(&sent).unwrap(), v);
        }
    }

    #[test]
    fn a_huge_claimed_length_fails_without_allocating_it() {
        // Length 2^62 (a varint), then three bytes.
        let mut payload = postcard::to_allocvec(&(1u64 << 62)).unwrap();
        payload.extend_from_slice(&[1, 2, 3]);
        assert!(crate::codec::decode::<ByteBuf>(&payload).is_err());
        // The largest length a varint holds.
        let mut payload = postcard::to_allocvec(&u64::MAX).unwrap();
        payload.push(0);
        assert!(crate::codec::decode::<ByteBuf>(&payload).is_err());
        // A truncated byte string.
        let mut payload = postcard::to_allocvec(&bytes(300)).unwrap();
        payload.truncate(100);
        assert!(crate::codec::decode::<ByteBuf>(&payload).is_err());
    }

    /// A deserializer that hands out a sequence of `u8` with a huge size hint, as a self-describing
    /// format might: the visitor must not trust the hint.
    #[test]
    fn a_sequence_with_a_huge_size_hint_reserves_little() {
        use serde::de::value::{Error, SeqDeserializer};

        struct Lying<I>(I);
        impl<'de, I: Iterator<Item = u8>> SeqAccess<'de> for Lying<I> {
            type Error = Error;
            fn next_element_seed<T: serde::de::DeserializeSeed<'de>>(
                &mut self,
                seed: T,
            ) -> Result<Option<T::Value>, Error> {
                self.0.next().map(|b| seed.deserialize(serde::de::value::U8Deserializer::new(b))).transpose()
            }
            fn size_hint(&self) -> Option<usize> {
                Some(usize::MAX)
            }
        }
        let buf = ByteBufVisitor.visit_seq(Lying([1u8, 2, 3].into_iter())).unwrap();
        assert_eq!(buf.0, [1, 2, 3]);
        assert!(buf.0.capacity() <= MAX_PREALLOCATION);

        let de = SeqDeserializer::<_, Error>::new([4u8, 5].into_iter());
        assert_eq!(ByteBuf::deserialize(de).unwrap().0, [4, 5]);
    }

    #[test]
    fn owned_byte_bufs_are_taken_without_a_copy() {
        let v = bytes(1000);
        let ptr = v.as_ptr();
        let buf: ByteBuf = ByteBufVisitor.visit_byte_buf::<serde::de::value::Error>(v).unwrap();
        assert_eq!(buf.0.as_ptr(), ptr);
    }
}
