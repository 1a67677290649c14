//! The `--cluster.*` settings and the addresses they resolve to: where the gossip listens
//! and the address it tells peers to reach this node on (`--cluster.advertise-address`,
//! or deduced as Alertmanager does when listening on an unspecified address).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use crate::notifier::cluster::ClusterError;
use crate::notifier::cluster::seal::Seal;

/// `--cluster.peer-timeout` default: the wait between peers' sends.
pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_secs(15);
/// `--cluster.gossip-interval` default.
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_millis(200);
/// `--cluster.pushpull-interval` default (and `--cluster.settle-timeout`'s).
pub const DEFAULT_PUSHPULL_INTERVAL: Duration = Duration::from_secs(60);

/// Cluster settings (Alertmanager's `--cluster.*` flags).
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// `--cluster.listen-address` (`host:port`, UDP).
    pub listen_address: String,
    /// `--cluster.advertise-address`.
    pub advertise_address: Option<String>,
    /// `--cluster.peer`, repeated: `host:port` of other members.
    pub peers: Vec<String>,
    /// `--cluster.peer-timeout`: a node at position `n` waits `n ×` this before it sends.
    pub peer_timeout: Duration,
    /// `--cluster.gossip-interval`.
    pub gossip_interval: Duration,
    /// `--cluster.pushpull-interval`: how often every member's whole state is merged
    /// again (besides the changes merged as they arrive).
    pub pushpull_interval: Duration,
    /// `--cluster.settle-timeout`: the longest notifications wait for the gossip to
    /// settle after start.
    pub settle_timeout: Duration,
    /// `--cluster.key-file` (a Strata extension): the shared key gossiped values and
    /// members are authenticated with (see [`Seal`]).
    pub key_file: Option<PathBuf>,
}

impl ClusterOptions {
    /// Options listening on `listen_address` with Alertmanager's defaults.
    pub fn new(listen_address: impl Into<String>) -> ClusterOptions {
        ClusterOptions {
            listen_address: listen_address.into(),
            advertise_address: None,
            peers: Vec::new(),
            peer_timeout: DEFAULT_PEER_TIMEOUT,
            gossip_interval: DEFAULT_GOSSIP_INTERVAL,
            pushpull_interval: DEFAULT_PUSHPULL_INTERVAL,
            settle_timeout: DEFAULT_PUSHPULL_INTERVAL,
            key_file: None,
        }
    }

    /// The shared key of `--cluster.key-file`, read and checked (`None`: no key).
    pub fn seal(&self) -> Result<Option<Seal>, ClusterError> {
        self.key_file.as_deref().map(Seal::read).transpose()
    }

    /// Checks the settings and resolves (listen, advertise) addresses.
    pub fn resolve(&self) -> Result<(SocketAddr, SocketAddr), ClusterError> {
        let flag = |flag: &'static str, value: &str, reason: &str| ClusterError::Flag {
            flag,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if self.gossip_interval.is_zero() {
            return Err(flag("gossip-interval", "0s", "must be more than 0"));
        }
        if self.pushpull_interval.is_zero() {
            return Err(flag("pushpull-interval", "0s", "must be more than 0"));
        }
        for p in &self.peers {
            host_port(p).map_err(|e| flag("peer", p, &e))?;
        }
        let listen = resolve_one(&self.listen_address)
            .map_err(|e| flag("listen-address", &self.listen_address, &e))?;
        if listen.port() == 0 {
            return Err(flag(
                "listen-address",
                &self.listen_address,
                "a port is required: peers are given this node's address",
            ));
        }
        let advertise = match &self.advertise_address {
            Some(a) => {
                let addr = resolve_one(a).map_err(|e| flag("advertise-address", a, &e))?;
                if addr.ip().is_unspecified() || addr.port() == 0 {
                    return Err(flag(
                        "advertise-address",
                        a,
                        "must be an address peers can reach, with its port",
                    ));
                }
                addr
            }
            None if listen.ip().is_unspecified() => self
                .peers
                .iter()
                .find_map(|p| local_address_towards(p, listen.ip()))
                .map(|ip| SocketAddr::new(ip, listen.port()))
                .ok_or_else(|| ClusterError::NoAdvertiseAddress {
                    listen: self.listen_address.clone(),
                })?,
            None => listen,
        };
        if advertise.ip().is_loopback()
            && self
                .peers
                .iter()
                .filter_map(|p| resolve_one(p).ok())
                .any(|a| !a.ip().is_loopback())
        {
            tracing::warn!(
                addr = %advertise,
                "this node advertises itself on a loopback address and will be unreachable by its non-local peers: set --cluster.advertise-address"
            );
        }
        Ok((listen, advertise))
    }
}

/// Splits `host:port` (`[v6]:port`), checking the port.
fn host_port(s: &str) -> Result<(&str, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_owned())?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("invalid port {port:?}"))?;
    if host.is_empty() {
        return Err("expected host:port".into());
    }
    Ok((host, port))
}

/// The first address `host:port` resolves to.
fn resolve_one(s: &str) -> Result<SocketAddr, String> {
    host_port(s)?;
    s.to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "resolves to no address".to_owned())
}

/// The local address this host would send from to reach `peer` (a connected UDP socket
/// asks the routing table; nothing is sent).
fn local_address_towards(peer: &str, listen: IpAddr) -> Option<IpAddr> {
    let target = peer
        .to_socket_addrs()
        .ok()?
        .find(|a| a.is_ipv4() == listen.is_ipv4())?;
    let socket = UdpSocket::bind(SocketAddr::new(listen, 0)).ok()?;
    socket.connect(target).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_resolve_as_alertmanager_deduces_them() {
        let mut o = ClusterOptions::new("127.0.0.1:9094");
        let (l, a) = o.resolve().unwrap();
        assert_eq!(a, l, "a specified listen address is advertised");
        assert_eq!(l.to_string(), "127.0.0.1:9094");

        o.advertise_address = Some("127.0.0.2:9000".into());
        assert_eq!(o.resolve().unwrap().1.to_string(), "127.0.0.2:9000");

        // 0.0.0.0: the local address towards the first peer.
        let mut any = ClusterOptions::new("0.0.0.0:9094");
        assert!(matches!(
            any.resolve(),
            Err(ClusterError::NoAdvertiseAddress { .. })
        ));
        any.peers = vec!["127.0.0.1:9095".into()];
        assert_eq!(any.resolve().unwrap().1.to_string(), "127.0.0.1:9094");
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (o, flag) in [
            (ClusterOptions::new("nonsense"), "--cluster.listen-address"),
            (
                ClusterOptions::new("127.0.0.1:0"),
                "--cluster.listen-address",
            ),
            (
                ClusterOptions {
                    peers: vec!["host-without-port".into()],
                    ..ClusterOptions::new("127.0.0.1:9094")
                },
                "--cluster.peer",
            ),
            (
                ClusterOptions {
                    advertise_address: Some("0.0.0.0:9094".into()),
                    ..ClusterOptions::new("127.0.0.1:9094")
                },
                "--cluster.advertise-address",
            ),
            (
                ClusterOptions {
                    gossip_interval: Duration::ZERO,
                    ..ClusterOptions::new("127.0.0.1:9094")
                },
                "--cluster.gossip-interval",
            ),
        ] {
            let e = o.resolve().unwrap_err().to_string();
            assert!(e.starts_with(flag), "{e}");
        }
    }
}
