//! Who may change a binder.

use ipnet::IpNet;
use rmi_core::{BinderError, Secret};
use subtle::ConstantTimeEq;

use crate::transport::Origin;

/// Who may change a binder (bind, rebind, unbind). Lookups are open to everyone.
///
/// A change is allowed when the caller's [`Origin`] is admitted, either as a peer on the binder's
/// own host ([`Access::allow_local`], on by default) or by an allowed network ([`Access::allow`]),
/// **and**, if a secret is set ([`Access::secret`]), the caller presents it.
///
/// The default, [`Access::local_only`], admits peers on the binder's host only (loopback, Unix
/// sockets, the same process), like Java's registry. A proxy or tunnel on that host (an SSH
/// forward, a container port proxy) makes every peer behind it look local: on such hosts, set a
/// secret too. To let other hosts register their objects,
/// allow their networks, and set a secret unless the network is trusted:
///
/// ```
/// use rmi_runtime::binder::Access;
/// use rmi_runtime::Secret;
///
/// let access = Access::local_only().allow("10.0.0.0/8".parse().unwrap()).secret(Secret::new("s3cret"));
/// ```
#[derive(Clone, Debug)]
pub struct Access {
    local: bool,
    networks: Vec<IpNet>,
    secret: Option<Secret>,
}

impl Default for Access {
    fn default() -> Self {
        Self::local_only()
    }
}

impl Access {
    /// Peers on the binder's own host, with no secret: the default.
    pub fn local_only() -> Self {
        Access { local: true, networks: Vec::new(), secret: None }
    }

    /// Every peer, from any address. Pair it with a [secret](Access::secret).
    pub fn anyone() -> Self {
        Self::local_only().allow(IpNet::V4(Default::default())).allow(IpNet::V6(Default::default()))
    }

    /// Also admits peers whose IP address is in `network` (`"192.168.1.0/24"`, `"0.0.0.0/0"`).
    pub fn allow(mut self, network: IpNet) -> Self {
        self.networks.push(network);
        self
    }

    /// Whether peers on the binder's own host are admitted (default: yes). With `false`, only
    /// allowed networks are, loopback included only if a network covers it.
    pub fn allow_local(mut self, local: bool) -> Self {
        self.local = local;
        self
    }

    /// Requires callers to present `secret` as well.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Whether a caller at `origin` presenting `presented` may change the binder; `origin` is
    /// `None` for a caller in the binder's own process that calls the service directly, which is
    /// always allowed.
    ///
    /// # Errors
    /// [`BinderError::Unauthorized`], saying why.
    pub fn check(&self, origin: Option<Origin>, presented: Option<&Secret>) -> Result<(), BinderError> {
        let Some(origin) = origin else {
            return Ok(());
        };
        let admitted = (self.local && origin.is_local())
            || origin
                .ip()
                .map(|ip| ip.to_canonical())
                .is_some_and(|ip| self.networks.iter().any(|n| n.contains(&ip)));
        if !admitted {
            return Err(BinderError::Unauthorized(format!(
                "peer {origin} is not on this binder's host or an allowed network"
            )));
        }
        match (&self.secret, presented) {
            (None, _) => Ok(()),
            (Some(expected), Some(given))
                if bool::from(expected.expose().as_bytes().ct_eq(given.expose().as_bytes())) =>
            {
                Ok(())
            }
            (Some(_), Some(_)) => Err(BinderError::Unauthorized("wrong secret".into())),
            (Some(_), None) => Err(BinderError::Unauthorized("this binder requires a secret".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<Origin> {
        Some(Origin::Ip(s.parse().unwrap()))
    }

    #[test]
    fn the_default_admits_this_host_only() {
        let access = Access::default();
        for origin in
            [ip("127.0.0.1:1"), ip("[::1]:1"), ip("[::ffff:127.0.0.1]:1"), Some(Origin::Local), None]
        {
            assert_eq!(access.check(origin, None), Ok(()), "{origin:?}");
        }
        for origin in [ip("10.1.2.3:1"), ip("[2001:db8::1]:1"), Some(Origin::Unknown)] {
            assert!(matches!(access.check(origin, None), Err(BinderError::Unauthorized(_))), "{origin:?}");
        }
    }

    #[test]
    fn networks_and_secrets_combine() {
        let access = Access::local_only()
            .allow_local(false)
            .allow("10.0.0.0/8".parse().unwrap())
            .secret(Secret::new("k"));
        let good = Secret::new("k");
        assert_eq!(access.check(ip("10.9.9.9:5"), Some(&good)), Ok(()));
        assert_eq!(access.check(ip("[::ffff:10.9.9.9]:5"), Some(&good)), Ok(()));
        let refused =
            |origin, secret| matches!(access.check(origin, secret), Err(BinderError::Unauthorized(_)));
        assert!(refused(ip("10.9.9.9:5"), None));
        let wrong = Secret::new("K");
        assert!(refused(ip("10.9.9.9:5"), Some(&wrong)));
        assert!(refused(ip("127.0.0.1:5"), Some(&good)), "loopback is not on the allow-list");
        assert!(refused(Some(Origin::Local), Some(&good)));
        assert!(Access::anyone().check(ip("203.0.113.7:9"), None).is_ok());
    }
}
