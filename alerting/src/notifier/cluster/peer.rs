//! This node as a member of the cluster: its name and address, the live members as the
//! failure detector sees them, its position among them (Alertmanager's `Peer.Position`:
//! the index of this node in the member list sorted by name) and the wait derived from it
//! (`clusterWait`: position × `--cluster.peer-timeout`), and whether the gossip has
//! settled (`ready`) or not (`settling`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chitchat::ChitchatHandle;
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::notifier::cluster::metrics::ClusterMetrics;
use crate::notifier::cluster::outbox::Outbox;

/// A live member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name (a ULID chosen at start, as Alertmanager's).
    pub name: String,
    /// Its gossip address.
    pub address: SocketAddr,
}

/// This node in the cluster.
pub struct Peer {
    name: String,
    address: SocketAddr,
    peer_timeout: Duration,
    /// Live members, this node included, sorted by name.
    members: RwLock<Vec<Member>>,
    ready: watch::Sender<bool>,
    pub(crate) outbox: Arc<Outbox>,
    handle: tokio::sync::Mutex<Option<ChitchatHandle>>,
    /// State exchange counters.
    pub metrics: ClusterMetrics,
}

impl Peer {
    pub(crate) fn new(
        name: String,
        address: SocketAddr,
        peer_timeout: Duration,
        handle: ChitchatHandle,
    ) -> Peer {
        let me = Member {
            name: name.clone(),
            address,
        };
        Peer {
            name,
            address,
            peer_timeout,
            members: RwLock::new(vec![me]),
            ready: watch::Sender::new(false),
            outbox: Arc::default(),
            handle: tokio::sync::Mutex::new(Some(handle)),
            metrics: ClusterMetrics::default(),
        }
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This node's advertised gossip address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The live members, this node included, sorted by name.
    pub fn members(&self) -> Vec<Member> {
        self.members.read().clone()
    }

    /// Replaces the live members (this node is always one of them).
    pub(crate) fn set_members(&self, mut live: Vec<Member>) {
        if !live.iter().any(|m| m.name == self.name) {
            live.push(Member {
                name: self.name.clone(),
                address: self.address,
            });
        }
        live.sort_by(|a, b| a.name.cmp(&b.name));
        *self.members.write() = live;
    }

    /// Index of this node among the members sorted by name.
    pub fn position(&self) -> usize {
        self.members
            .read()
            .iter()
            .position(|m| m.name == self.name)
            .unwrap_or(0)
    }

    /// How long this node waits before it notifies (`clusterWait`).
    pub fn wait(&self) -> Duration {
        self.peer_timeout
            .saturating_mul(u32::try_from(self.position()).unwrap_or(u32::MAX))
    }

    /// Whether the gossip has settled.
    pub fn ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// `ready` or `settling`, as `/api/v2/status` reports it.
    pub fn status(&self) -> &'static str {
        if self.ready() { "ready" } else { "settling" }
    }

    pub(crate) fn set_ready(&self) {
        self.ready.send_replace(true);
    }

    /// Returns once the gossip has settled (Alertmanager's `WaitReady`).
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Stops the gossip (at shutdown); the peers' failure detectors then notice.
    pub async fn leave(&self) {
        if let Some(h) = self.handle.lock().await.take()
            && let Err(e) = h.shutdown().await
        {
            tracing::warn!(error = %e, "stopping the cluster gossip");
        }
    }
}
