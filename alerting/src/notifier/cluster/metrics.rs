//! Counters of the cluster's state exchange for `/metrics` (membership gauges are read
//! from the [`Peer`](super::Peer) itself).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the gossiped state.
#[derive(Debug, Default)]
pub struct ClusterMetrics {
    /// `alertmanager_silences_gossip_messages_propagated_total`: peers' silences merged
    /// (and so gossiped on by this node).
    pub silences_propagated: AtomicU64,
    /// `alertmanager_nflog_gossip_messages_propagated_total`: peers' notification log
    /// entries merged.
    pub nflog_propagated: AtomicU64,
    /// `strata_acks_gossip_messages_propagated_total`: peers' acknowledgements merged.
    pub acks_propagated: AtomicU64,
    /// `strata_cluster_state_invalid_total{state="silences"}`: peers' values that did not
    /// decode or were refused (logged).
    pub silences_invalid: AtomicU64,
    /// `strata_cluster_state_invalid_total{state="nflog"}`.
    pub nflog_invalid: AtomicU64,
    /// `strata_cluster_state_invalid_total{state="acks"}`.
    pub acks_invalid: AtomicU64,
    /// `strata_cluster_state_invalid_total{state="unknown"}`: keys of neither kind.
    pub unknown_invalid: AtomicU64,
    /// `strata_cluster_state_oversized_total`: local silences or log entries too large to
    /// gossip (kept here, not shared; logged).
    pub oversized: AtomicU64,
    /// `strata_cluster_unauthenticated_members`: nodes gossiping with this one whose
    /// member token does not verify with the cluster key (not counted as members).
    pub unauthenticated_members: AtomicU64,
}

impl ClusterMetrics {
    /// Adds `n` to `c`.
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// The value of `c`.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
