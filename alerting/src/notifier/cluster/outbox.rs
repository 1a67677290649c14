//! Local changes on their way into this node's gossiped state: the silences' and the
//! log's hooks queue `key → value` (or a removal) here, one pending change per key, so the
//! queue is never larger than the state itself; [`run`] applies them to the chitchat state
//! (sealed with the cluster key when there is one, see [`Seal`]), from where the gossip
//! carries them to the peers.

use std::collections::BTreeMap;
use std::sync::Arc;

use chitchat::Chitchat;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::notifier::cluster::seal::Seal;

/// Pending changes of this node's gossiped state.
#[derive(Default)]
pub(crate) struct Outbox {
    pending: Mutex<BTreeMap<String, Option<String>>>,
    wake: Notify,
}

impl Outbox {
    /// Sets `key` to `value`.
    pub(crate) fn set(&self, key: String, value: String) {
        self.pending.lock().insert(key, Some(value));
        self.wake.notify_one();
    }

    /// Removes `key`.
    pub(crate) fn remove(&self, key: String) {
        self.pending.lock().insert(key, None);
        self.wake.notify_one();
    }

    fn take(&self) -> BTreeMap<String, Option<String>> {
        std::mem::take(&mut *self.pending.lock())
    }
}

/// Applies queued changes to this node's chitchat state until `stop` turns true.
pub(crate) async fn run(
    outbox: Arc<Outbox>,
    chitchat: Arc<tokio::sync::Mutex<Chitchat>>,
    seal: Option<Arc<Seal>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let batch = outbox.take();
        if !batch.is_empty() {
            let mut c = chitchat.lock().await;
            let state = c.self_node_state();
            for (key, value) in batch {
                match value {
                    Some(v) => {
                        let v = match &seal {
                            Some(s) => s.seal(&key, &v),
                            None => v,
                        };
                        state.set(key, v);
                    }
                    None if state.get(&key).is_some() => state.delete(&key),
                    None => {}
                }
            }
        }
        tokio::select! {
            () = outbox.wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
