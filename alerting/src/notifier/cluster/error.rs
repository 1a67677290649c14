//! [`ClusterError`]: why the notifier could not join its cluster.

use std::net::SocketAddr;

/// Errors of the `--cluster.*` settings and of starting the gossip.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A flag's value is unusable.
    #[error("--cluster.{flag}={value}: {reason}")]
    Flag {
        /// The flag, without `--cluster.`.
        flag: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The listen address is unspecified (`0.0.0.0`) and no address peers can reach
    /// this node on could be deduced.
    #[error(
        "cannot deduce the address to advertise from --cluster.listen-address={listen} without a reachable --cluster.peer: set --cluster.advertise-address"
    )]
    NoAdvertiseAddress {
        /// The listen address.
        listen: String,
    },
    /// The gossip could not start (the UDP port is taken, …).
    #[error("starting the cluster gossip on {addr}/udp: {reason}")]
    Start {
        /// The listen address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}
