//! What a binder (naming service) and its clients exchange: bindings, version ranges and the
//! binder's errors.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{EndpointId, InterfaceId, RemoteRef};

/// One entry of a binder: a name, the object it stands for, and who registered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The name the object is bound under.
    pub name: String,
    /// The object: where it lives (which may be another host than the binder's), its id, its
    /// interface and version.
    pub reference: RemoteRef,
    /// The interface's name, as the registrant described it (empty if it did not know it). Only
    /// for people: `reference.interface` is what lookups match.
    pub interface_name: String,
    /// The endpoint that registered the entry and keeps its lease.
    pub registrant: EndpointId,
    /// How long the entry lives unless its registrant renews its lease; `None` for entries the
    /// binder's own host made, which live until unbound.
    pub expires_in: Option<Duration>,
}

/// A range of interface versions, both ends included: what a lookup by interface accepts.
///
/// Written `2` (exactly), `1..=3`, `2..` (at least) or `..` (any) in [`FromStr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Versions {
    /// The lowest version accepted.
    pub min: u32,
    /// The highest version accepted.
    pub max: u32,
}

impl Versions {
    /// Every version.
    pub const ANY: Versions = Versions { min: 0, max: u32::MAX };

    /// Only `version`.
    pub const fn exactly(version: u32) -> Self {
        Versions { min: version, max: version }
    }

    /// Whether `version` is in the range.
    pub const fn contains(&self, version: u32) -> bool {
        self.min <= version && version <= self.max
    }
}

impl From<RangeInclusive<u32>> for Versions {
    fn from(range: RangeInclusive<u32>) -> Self {
        Versions { min: *range.start(), max: *range.end() }
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (0, u32::MAX) => f.write_str(".."),
            (min, u32::MAX) => write!(f, "{min}.."),
            (min, max) if min == max => write!(f, "{min}"),
            (min, max) => write!(f, "{min}..={max}"),
        }
    }
}

/// A string that is not a version range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid version range `{0}` (expected `2`, `1..=3`, `2..` or `..`)")]
pub struct VersionsParseError(String);

impl FromStr for Versions {
    type Err = VersionsParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionsParseError(s.to_owned());
        let number = |t: &str| t.trim().parse::<u32>().map_err(|_| err());
        let s = s.trim();
        let versions = if let Some((min, max)) = s.split_once("..=") {
            Versions { min: if min.is_empty() { 0 } else { number(min)? }, max: number(max)? }
        } else if let Some((min, max)) = s.split_once("..") {
            if !max.is_empty() {
                return Err(err());
            }
            Versions { min: if min.is_empty() { 0 } else { number(min)? }, max: u32::MAX }
        } else {
            Versions::exactly(number(s)?)
        };
        if versions.min > versions.max {
            return Err(err());
        }
        Ok(versions)
    }
}

/// A shared secret that authorises changes to a binder. Its `Debug` output does not show it.
///
/// It travels in the request as it is: over a network others can read, use it only on a
/// connection they cannot see (a private network, a tunnel), or rely on an allow-list instead.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret with this text.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret's text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a binder refused a request, or why a binding did not fit what the caller asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum BinderError {
    /// `bind` of a name that is already bound (use `rebind` to replace it).
    #[error("the name `{0}` is already bound")]
    NameTaken(String),
    /// No entry has this name (never bound, unbound, or its lease ran out).
    #[error("the name `{0}` is not bound")]
    NotBound(String),
    /// The caller may not change this binder.
    #[error("not allowed to change the binder: {0}")]
    Unauthorized(String),
    /// The name or the entry is not acceptable (empty, too long, control characters).
    #[error("invalid binding: {0}")]
    Invalid(String),
    /// The binder holds its maximum number of entries.
    #[error("the binder is full: it holds its limit of {limit} entries")]
    Full {
        /// The binder's limit.
        limit: u64,
    },
    /// The caller has no lease to renew: the binder never granted it one, or has forgotten it
    /// (it restarted, or the lease ran out long ago).
    #[error("no lease: the binder knows no entries of this endpoint")]
    NoLease,
    /// A typed lookup found an object of another interface under the name.
    #[error(
        "`{name}` is bound to an object of interface {}, not {}",
        interface(bound_name, bound),
        interface(expected_name, expected)
    )]
    WrongInterface {
        /// The name looked up.
        name: String,
        /// The interface the caller asked for.
        expected: InterfaceId,
        /// Its name.
        expected_name: String,
        /// The bound object's interface.
        bound: InterfaceId,
        /// Its name, as the registrant gave it (empty if it did not).
        bound_name: String,
    },
    /// A typed lookup found an object of another version of the interface under the name.
    #[error("`{name}` is bound to version {bound} of the interface, the caller expects version {expected}")]
    WrongVersion {
        /// The name looked up.
        name: String,
        /// The version the caller asked for.
        expected: u32,
        /// The bound object's.
        bound: u32,
    },
    /// A lookup by interface found no reachable object of the interface.
    #[error("no reachable object of interface {interface} (versions {versions}) is bound")]
    NoneBound {
        /// The interface asked for.
        interface: InterfaceId,
        /// The versions asked for.
        versions: Versions,
    },
}

/// An interface for people: its name and id, or its id alone.
fn interface(name: &str, id: &InterfaceId) -> String {
    if name.is_empty() { id.to_string() } else { format!("{name} ({id})") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ranges_parse_and_print() {
        for (text, versions) in [
            ("2", Versions::exactly(2)),
            ("1..=3", Versions { min: 1, max: 3 }),
            ("2..", Versions { min: 2, max: u32::MAX }),
            ("..", Versions::ANY),
            ("..=4", Versions { min: 0, max: 4 }),
        ] {
            assert_eq!(text.parse::<Versions>().unwrap(), versions, "{text}");
        }
        assert_eq!(Versions { min: 1, max: 3 }.to_string(), "1..=3");
        assert_eq!(Versions::exactly(7).to_string(), "7");
        for bad in ["", "x", "3..=1", "1..2", "-1"] {
            assert!(bad.parse::<Versions>().is_err(), "{bad}");
        }
        assert!(Versions::from(1..=3).contains(3) && !Versions::from(1..=3).contains(4));
    }

    #[test]
    fn a_wrong_interface_is_named_when_its_name_is_known() {
        let error = BinderError::WrongInterface {
            name: "adder".into(),
            expected: InterfaceId::from_name("Service"),
            expected_name: "Service".into(),
            bound: InterfaceId::from_name("Adder"),
            bound_name: String::new(),
        };
        assert_eq!(
            error.to_string(),
            format!(
                "`adder` is bound to an object of interface {}, not Service ({})",
                InterfaceId::from_name("Adder"),
                InterfaceId::from_name("Service")
            )
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(..)");
    }
}
