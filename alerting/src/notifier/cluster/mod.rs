//! High availability of the notifier, as Alertmanager's cluster: two or three Strata
//! notifiers gossip their silences and notification log, so a silence made on any node
//! mutes alerts on every node, a dead node loses no silence, and an alert sent to every
//! node is notified once by the cluster.
//!
//! Semantics, from Alertmanager's `cluster`, `notify`, `silence` and `nflog` packages:
//! - **State.** Every node gossips its silences, notification log entries and
//!   acknowledgements (one key-value pair each in its own gossiped state, [`wire`]) and
//!   merges every member's ([`inbox`]): silences and acknowledgements by id, the later
//!   `updatedAt` winning; log entries by `<group key>|<receiver integration>`, the later
//!   timestamp winning. What a node merged
//!   it gossips on as its own, so a node that restarts (or joins) gets the whole state
//!   from any live member, besides its own files in `<data>/alertmanager/`.
//! - **Once per cluster.** A node waits `position × --cluster.peer-timeout` before it
//!   notifies (`clusterWait`; position = index of this node in the live members sorted by
//!   name, [`Peer::position`]), then dedups against the log: the first node's entry has
//!   reached the others by then and they do not send again. A dead node drops out of the
//!   member list once the failure detector notices, and the next node takes its place.
//! - **Settling.** After start nothing is notified until the member count is stable or
//!   `--cluster.settle-timeout` passed ([`settle`]); `/api/v2/status` says `settling`
//!   until then, `ready` after.
//! - **Bounds.** The gossiped state is the local state (silences expire and are dropped
//!   after the retention, log entries too; a dropped pair is deleted from the node's
//!   gossiped state, and peers refuse anything past the retention). A value is at most
//!   [`wire::MAX_VALUE_BYTES`] (larger local ones stay local, counted); datagrams are at
//!   most 64 KiB; a peer's value that does not decode is logged, counted
//!   (`strata_cluster_state_invalid_total`) and dropped, and undecodable datagrams are
//!   dropped by the gossip layer.
//!
//! The gossip is [chitchat](https://github.com/quickwit-oss/chitchat) (Quickwit's,
//! maintained): membership with a phi-accrual failure detector and scuttlebutt
//! anti-entropy of per-node key-value state over UDP, on tokio. Its model — each node
//! owns a versioned key-value map, everybody converges on everybody's map through digests
//! and deltas bounded to a datagram — is Alertmanager's model (each node broadcasts its
//! own state, full state is exchanged on join and periodically) without a protocol of our
//! own: a joining node's first gossip rounds are the full state sync. `foca` (SWIM) was
//! the other candidate: it gives membership only, so the state transfer (broadcast
//! queues, full sync over TCP on join) would have had to be written here. chitchat adds no
//! second version of any crate to the tree (its tokio, rand, itertools and zstd are the
//! workspace's). There is no separate push-pull in chitchat (every round reconciles);
//! `--cluster.pushpull-interval` is how often this node merges every member's whole state
//! again. Failure detection: a member is dead after about
//! [`FAILURE_DETECTION`] without heartbeats (memberlist's LAN suspicion time is of the same
//! order), and forgotten [`DEAD_NODE_GRACE`] later.

mod error;
pub mod inbox;
mod metrics;
pub mod options;
mod outbox;
mod peer;
pub mod seal;
pub mod settle;
#[cfg(test)]
mod tests;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use chitchat::transport::UdpTransport;
use chitchat::{
    ChitchatConfig, ChitchatId, FailureDetectorConfig, ProtocolVersion, spawn_chitchat,
};
use tokio::sync::watch;

pub use error::ClusterError;
pub use metrics::ClusterMetrics;
pub use options::ClusterOptions;
pub use peer::{Member, Peer};

use crate::notifier::acks::{AckChange, Acks};
use crate::notifier::nflog::{Nflog, NflogChange};
use crate::notifier::silences::{SilenceChange, Silences};
use crate::rules::group::now_ms;

/// Rejects gossip from other kinds of clusters sharing the port range.
const CLUSTER_ID: &str = "strata-alertmanager";

/// About how long without heartbeats makes a member dead.
pub const FAILURE_DETECTION: Duration = Duration::from_secs(5);

/// How long a dead member is remembered (and occasionally gossiped to) before its state
/// is dropped; the live members hold everything it had.
pub const DEAD_NODE_GRACE: Duration = Duration::from_secs(3600);

/// How long deleted pairs are remembered, so that a peer that missed the deletion learns
/// of it.
const TOMBSTONE_GRACE: Duration = Duration::from_secs(3600);

/// The state a node shares with its peers.
pub struct Shared {
    /// Silences.
    pub silences: Arc<Silences>,
    /// The notification log.
    pub nflog: Arc<Nflog>,
    /// Acknowledgements of alert groups.
    pub acks: Arc<Acks>,
}

/// Joins (or founds) the cluster: starts the gossip, gossips the `shared` state and
/// merges the peers' into it until `stop` turns true.
pub async fn join(
    opts: &ClusterOptions,
    shared: Shared,
    stop: watch::Receiver<bool>,
) -> Result<Arc<Peer>, ClusterError> {
    let (listen, advertise) = opts.resolve()?;
    let seal = opts.seal()?.map(Arc::new);
    let name = ulid::Ulid::new().to_string();
    let generation = u64::try_from(now_ms()).unwrap_or(0);
    let initial = match &seal {
        Some(s) => vec![(
            seal::MEMBER_KEY.to_owned(),
            s.member_token(&name, generation, &advertise.to_string()),
        )],
        None => Vec::new(),
    };
    let me = ChitchatId::new(name.clone(), generation, advertise);
    let gossip = opts.gossip_interval;
    let config = ChitchatConfig {
        chitchat_id: me.clone(),
        cluster_id: CLUSTER_ID.to_owned(),
        gossip_interval: gossip,
        listen_addr: listen,
        seed_nodes: opts.peers.clone(),
        failure_detector_config: FailureDetectorConfig {
            // phi is the time since the last heartbeat over the mean heartbeat interval
            // (about the gossip interval).
            phi_threshold: (FAILURE_DETECTION.as_secs_f64() / gossip.as_secs_f64()).max(8.0),
            initial_interval: gossip.max(Duration::from_millis(500)),
            dead_node_grace_period: DEAD_NODE_GRACE,
            ..FailureDetectorConfig::default()
        },
        marked_for_deletion_grace_period: TOMBSTONE_GRACE,
        catchup_callback: None,
        extra_liveness_predicate: None,
        protocol_version: ProtocolVersion::V0,
    };
    let handle = spawn_chitchat(config, initial, &UdpTransport)
        .await
        .map_err(|e| ClusterError::Start {
            addr: listen,
            reason: format!("{e:#}"),
        })?;
    let chitchat = handle.chitchat();
    let live = chitchat.lock().await.live_nodes_watcher();
    let ended = handle.termination_watcher();
    let peer = Arc::new(Peer::new(name, advertise, opts.peer_timeout, handle));
    tracing::info!(name = peer.name(), %listen, %advertise, peers = ?opts.peers, authenticated = seal.is_some(), "joining the notifier cluster");
    install_hooks(&peer, &shared);
    tokio::spawn(outbox::run(
        peer.outbox.clone(),
        chitchat,
        seal.clone(),
        stop.clone(),
    ));
    tokio::spawn(
        inbox::Inbox {
            peer: peer.clone(),
            me,
            silences: shared.silences,
            nflog: shared.nflog,
            acks: shared.acks,
            seal,
            full_sync: opts.pushpull_interval,
        }
        .run(live, stop.clone()),
    );
    tokio::spawn(settle::run(peer.clone(), gossip, opts.settle_timeout, stop));
    tokio::spawn(async move {
        if let Err(e) = ended.await {
            tracing::error!(error = %e, "the cluster gossip stopped: silences and the notification log are no longer shared");
        }
    });
    Ok(peer)
}

/// Routes local changes of silences, log and acknowledgements into the peer's outbox
/// (first everything held).
fn install_hooks(peer: &Arc<Peer>, shared: &Shared) {
    let p = peer.clone();
    shared.silences.set_hook(Arc::new(move |c| match c {
        SilenceChange::Set(s) => match wire::encode_silence(s) {
            Ok((k, v)) => p.outbox.set(k, v),
            Err(e) => {
                ClusterMetrics::add(&p.metrics.oversized, 1);
                tracing::warn!(silence = %s.id, error = %e, "silence not gossiped");
            }
        },
        SilenceChange::Removed(id) => p.outbox.remove(wire::silence_key(id)),
    }));
    let p = peer.clone();
    shared.nflog.set_hook(Arc::new(move |c| match c {
        NflogChange::Set(key, e) => match wire::encode_nflog(key, e) {
            Ok((k, v)) => p.outbox.set(k, v),
            Err(err) => {
                ClusterMetrics::add(&p.metrics.oversized, 1);
                tracing::warn!(entry = %key, error = %err, "notification log entry not gossiped");
            }
        },
        NflogChange::Removed(key) => p.outbox.remove(wire::nflog_key(key)),
    }));
    let p = peer.clone();
    shared.acks.set_hook(Arc::new(move |c| match c {
        AckChange::Set(a) => match wire::encode_ack(a) {
            Ok((k, v)) => p.outbox.set(k, v),
            Err(e) => {
                ClusterMetrics::add(&p.metrics.oversized, 1);
                tracing::warn!(acknowledgement = %a.id, error = %e, "acknowledgement not gossiped");
            }
        },
        AckChange::Removed(id) => p.outbox.remove(wire::ack_key(id)),
    }));
}
