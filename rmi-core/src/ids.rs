//! Identifiers: the keys that carry a call across the wire.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// FNV-1a, 64 bit. Stable across releases: interface ids derived from it are part of the wire format.
const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// FNV-1a, 32 bit. Stable across releases: operation ids derived from it are part of the wire format.
const fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash
}

fn random_u128() -> u128 {
    let mut bytes = [0u8; 16];
    // The OS random source failing is not something a caller could handle: there is no safe fallback
    // for an id whose unguessability is the permission to call the object.
    getrandom::fill(&mut bytes).expect("the operating system's random number source failed");
    u128::from_le_bytes(bytes)
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u128);

        impl $name {
            /// A fresh id from the operating system's random source (128 bits).
            pub fn random() -> Self {
                Self(random_u128())
            }

            /// An id with a fixed value, for well-known objects and tests.
            pub const fn from_u128(value: u128) -> Self {
                Self(value)
            }

            /// The id as a number.
            pub const fn as_u128(self) -> u128 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:032x})"), self.0)
            }
        }

        // Sixteen raw bytes on the wire: a varint would spend 19 on a random value.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.to_le_bytes().serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <[u8; 16]>::deserialize(deserializer).map(|b| Self(u128::from_le_bytes(b)))
            }
        }
    };
}

random_id! {
    /// Names one exported object within its endpoint.
    ///
    /// Object ids are random 128-bit values, never reused: holding one is the permission to call the
    /// object (capability style), so they cannot be guessed or enumerated.
    ObjectId
}

random_id! {
    /// The stable identity of an endpoint (a process that serves or calls remote objects).
    ///
    /// Addresses can change; the endpoint id names the endpoint itself. It is exchanged in the handshake.
    EndpointId
}

/// Identifies a remote interface: FNV-1a (64 bit) of its name, which defaults to the trait's name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InterfaceId(pub u64);

impl InterfaceId {
    /// The id of the interface called `name`.
    pub const fn from_name(name: &str) -> Self {
        Self(fnv1a64(name.as_bytes()))
    }
}

impl fmt::Debug for InterfaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InterfaceId({:#018x})", self.0)
    }
}

impl fmt::Display for InterfaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// Identifies one operation (method) of an interface.
///
/// Derived from the method's name with FNV-1a (32 bit), so it stays the same when methods are reordered
/// or added; `#[op(id = N)]` pins it explicitly. `#[remote]` rejects two methods with the same id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpId(pub u32);

impl OpId {
    /// The id derived from a method called `name`.
    pub const fn from_name(name: &str) -> Self {
        Self(fnv1a32(name.as_bytes()))
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpId({:#010x})", self.0)
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// Matches a reply to its request within one connection.
///
/// A caller numbers its calls from one counter per endpoint (not per connection), so the pair
/// (caller's endpoint id, call id) also names a request across reconnections.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable() {
        // Fixed vectors: changing them breaks the wire format.
        assert_eq!(OpId::from_name("").0, 0x811c_9dc5);
        assert_eq!(OpId::from_name("a").0, 0xe40c_292c);
        assert_eq!(InterfaceId::from_name("a").0, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn object_ids_are_random_and_travel_as_16_bytes() {
        let (a, b) = (ObjectId::random(), ObjectId::random());
        assert_ne!(a, b);
        let bytes = postcard::to_allocvec(&a).unwrap();
        assert_eq!(bytes.len(), 16);
        assert_eq!(postcard::from_bytes::<ObjectId>(&bytes).unwrap(), a);
    }
}
