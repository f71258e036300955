//! Where an object lives: endpoint addresses and remote object references.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{EndpointId, InterfaceId, ObjectId};

/// How to reach an endpoint: a transport and its address, written `tcp://127.0.0.1:4000`,
/// `unix:///run/app.sock` or `memory://name`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Address {
    /// A TCP socket address.
    Tcp(SocketAddr),
    /// A Unix domain socket path.
    Unix(PathBuf),
    /// A named in-process endpoint (tests and same-process setups).
    Memory(String),
}

/// A string that does not name an [`Address`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid address `{input}`: {reason} (expected `tcp://HOST:PORT`, `unix://PATH` or `memory://NAME`)")]
pub struct AddressParseError {
    input: String,
    reason: &'static str,
}

impl FromStr for Address {
    type Err = AddressParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| AddressParseError { input: s.to_owned(), reason };
        if let Some(rest) = s.strip_prefix("tcp://") {
            rest.parse().map(Address::Tcp).map_err(|_| err("not an IP address and port"))
        } else if let Some(rest) = s.strip_prefix("unix://") {
            if rest.is_empty() {
                return Err(err("empty socket path"));
            }
            Ok(Address::Unix(PathBuf::from(rest)))
        } else if let Some(rest) = s.strip_prefix("memory://") {
            if rest.is_empty() {
                return Err(err("empty name"));
            }
            Ok(Address::Memory(rest.to_owned()))
        } else if let Ok(addr) = s.parse() {
            // A bare `host:port` means TCP, the common case.
            Ok(Address::Tcp(addr))
        } else {
            Err(err("unknown transport"))
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "tcp://{addr}"),
            Address::Unix(path) => write!(f, "unix://{}", path.display()),
            Address::Memory(name) => write!(f, "memory://{name}"),
        }
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Address::Tcp(addr)
    }
}

/// A remote object reference: where the object lives, which object, and what interface it offers.
///
/// It is plain data: it can be printed, stored and sent to another process, which can call the object
/// through a client stub made from it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct RemoteRef {
    /// The identity of the endpoint that exports the object.
    pub endpoint: EndpointId,
    /// Where that endpoint listens; `None` when it does not listen, so the object is reachable only
    /// over a connection its endpoint opened (callbacks to a client without a listening socket).
    pub address: Option<Address>,
    /// The object within that endpoint.
    pub object: ObjectId,
    /// The interface the object implements.
    pub interface: InterfaceId,
    /// The version of that interface.
    pub version: u32,
    /// Whether the object's endpoint collects it when nobody holds a reference to it: whoever
    /// makes a stub from the reference then registers with that endpoint and renews a lease while
    /// the stub lives. False for objects exported for good.
    pub collected: bool,
}

impl fmt::Display for RemoteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            Some(address) => write!(f, "{address}/{}", self.object)?,
            None => write!(f, "endpoint {}/{}", self.endpoint, self.object)?,
        }
        write!(f, " (interface {} v{})", self.interface, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_strings() {
        for s in ["tcp://127.0.0.1:4000", "tcp://[::1]:80", "unix:///tmp/a.sock", "memory://calc"] {
            let addr: Address = s.parse().unwrap();
            assert_eq!(addr.to_string(), s);
        }
        assert_eq!("127.0.0.1:9".parse::<Address>().unwrap().to_string(), "tcp://127.0.0.1:9");
    }

    #[test]
    fn bad_addresses_say_what_is_expected() {
        let err = "ftp://x".parse::<Address>().unwrap_err().to_string();
        assert!(err.contains("unknown transport") && err.contains("tcp://HOST:PORT"), "{err}");
        assert!("tcp://localhost".parse::<Address>().is_err());
        assert!("unix://".parse::<Address>().is_err());
    }
}
