//! The peers' gossiped state merged into this node's: whenever the live members or the
//! version of a member's state change, the key-value pairs changed since last time are
//! decoded and merged into the silences, the notification log and the acknowledgements
//! (the newer wins, see [`Silences::merge`], [`Nflog::merge`] and [`Acks::merge`]). Every `--cluster.pushpull-interval` every
//! member's whole state is merged again, as Alertmanager's push-pull full state sync.
//! Values that do not decode are logged and counted, never merged. With a cluster key,
//! only nodes whose member token verifies are members, and only values whose MAC
//! verifies are merged ([`Seal`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chitchat::{ChitchatId, NodeState};
use tokio::sync::watch;

use crate::notifier::acks::{Acknowledgement, Acks};
use crate::notifier::cluster::metrics::ClusterMetrics;
use crate::notifier::cluster::peer::{Member, Peer};
use crate::notifier::cluster::seal::{self, Seal};
use crate::notifier::cluster::wire::{self, Decoded};
use crate::notifier::nflog::{Entry, Nflog};
use crate::notifier::silences::{Silence, Silences};
use crate::rules::group::now_ms;

/// What the merge loop needs.
pub(crate) struct Inbox {
    pub(crate) peer: Arc<Peer>,
    pub(crate) me: ChitchatId,
    pub(crate) silences: Arc<Silences>,
    pub(crate) nflog: Arc<Nflog>,
    pub(crate) acks: Arc<Acks>,
    pub(crate) seal: Option<Arc<Seal>>,
    pub(crate) full_sync: Duration,
}

/// Live members and the pairs changed since the versions in `seen`.
type Changes = (Vec<Member>, Vec<(String, String)>);

impl Inbox {
    /// Merges until `stop` turns true or the gossip ends.
    pub(crate) async fn run(
        self,
        mut live: watch::Receiver<BTreeMap<ChitchatId, NodeState>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut seen: HashMap<ChitchatId, u64> = HashMap::new();
        let mut full = tokio::time::interval(self.full_sync);
        full.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                r = live.changed() => if r.is_err() { return },
                _ = full.tick() => seen.clear(),
            }
            let (members, changed) = {
                let states = live.borrow_and_update();
                self.changes(&states, &mut seen)
            };
            self.peer.set_members(members);
            if !changed.is_empty() {
                self.merge(changed);
            }
        }
    }

    fn changes(
        &self,
        states: &BTreeMap<ChitchatId, NodeState>,
        seen: &mut HashMap<ChitchatId, u64>,
    ) -> Changes {
        let mut members = Vec::with_capacity(states.len());
        let mut changed = Vec::new();
        seen.retain(|id, _| states.contains_key(id));
        let mut strangers = 0;
        for (id, state) in states {
            if *id != self.me
                && let Some(seal) = &self.seal
                && !state.get(seal::MEMBER_KEY).is_some_and(|t| {
                    seal.is_member(
                        t,
                        &id.node_id,
                        id.generation_id,
                        &id.gossip_advertise_addr.to_string(),
                    )
                })
            {
                strangers += 1;
                continue;
            }
            members.push(Member {
                name: id.node_id.to_string(),
                address: id.gossip_advertise_addr,
            });
            if *id == self.me {
                continue;
            }
            let max = state.max_version();
            let mut from = seen.get(id).copied().unwrap_or(0);
            if max < from {
                // The member's state was reset: take all of it again.
                from = 0;
            }
            if max == from {
                continue;
            }
            for (k, v) in state.key_values_including_deleted() {
                if v.version > from && !v.is_deleted() && k != seal::MEMBER_KEY {
                    changed.push((k.to_owned(), v.value.clone()));
                }
            }
            seen.insert(id.clone(), max);
        }
        self.peer
            .metrics
            .unauthenticated_members
            .store(strangers, std::sync::atomic::Ordering::Relaxed);
        (members, changed)
    }

    fn merge(&self, changed: Vec<(String, String)>) {
        let now = now_ms();
        let m = &self.peer.metrics;
        let mut silences: Vec<Silence> = Vec::new();
        let mut entries: Vec<(String, Entry)> = Vec::new();
        let mut acks: Vec<Acknowledgement> = Vec::new();
        let mut invalid = 0u64;
        for (k, v) in changed {
            let opened = match &self.seal {
                Some(s) => s.open(&k, &v).map_err(wire::WireError::from),
                None => Ok(v.as_str()),
            };
            match opened.and_then(|v| wire::decode(&k, v, now)) {
                Ok(Decoded::Silence(s)) => silences.push(s),
                Ok(Decoded::Nflog(k, e)) => entries.push((k, e)),
                Ok(Decoded::Ack(a)) => acks.push(a),
                Err(e) => {
                    let counter = if k.starts_with(wire::SILENCE_PREFIX) {
                        &m.silences_invalid
                    } else if k.starts_with(wire::NFLOG_PREFIX) {
                        &m.nflog_invalid
                    } else if k.starts_with(wire::ACK_PREFIX) {
                        &m.acks_invalid
                    } else {
                        &m.unknown_invalid
                    };
                    ClusterMetrics::add(counter, 1);
                    if invalid == 0 {
                        tracing::warn!(key = %k.chars().take(80).collect::<String>(), error = %e, "refusing a peer's gossiped state");
                    } else {
                        tracing::debug!(key = %k.chars().take(80).collect::<String>(), error = %e, "refusing a peer's gossiped state");
                    }
                    invalid += 1;
                }
            }
        }
        if invalid > 1 {
            tracing::warn!(count = invalid, "refused peers' gossiped values");
        }
        if !silences.is_empty() {
            match self.silences.merge(silences, now) {
                Ok(n) => ClusterMetrics::add(&m.silences_propagated, n as u64),
                Err(e) => tracing::warn!(error = %e, "merging peers' silences"),
            }
        }
        if !entries.is_empty() {
            match self.nflog.merge(entries, now) {
                Ok(n) => ClusterMetrics::add(&m.nflog_propagated, n as u64),
                Err(e) => tracing::warn!(error = %e, "merging peers' notification log"),
            }
        }
        if !acks.is_empty() {
            match self.acks.merge(acks, now) {
                Ok(n) => ClusterMetrics::add(&m.acks_propagated, n as u64),
                Err(e) => tracing::warn!(error = %e, "merging peers' acknowledgements"),
            }
        }
    }
}
