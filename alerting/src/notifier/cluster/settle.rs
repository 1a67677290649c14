//! Alertmanager's `Peer.Settle`: after start, notifications wait until the member count
//! has stayed the same for three polls (one poll every ten gossip intervals), or until
//! `--cluster.settle-timeout`, so that a starting node learns the silences and the
//! notification log before it sends anything.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::notifier::cluster::peer::Peer;

/// Polls in a row with the same member count that make the gossip settled.
const OKAY_REQUIRED: u32 = 3;

/// Marks `peer` ready once settled or after `timeout`.
pub(crate) async fn run(
    peer: Arc<Peer>,
    gossip_interval: Duration,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let interval = gossip_interval.saturating_mul(10);
    tracing::info!(?interval, "waiting for the cluster gossip to settle");
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    let (mut members, mut okay, mut polls) = (0usize, 0u32, 0u32);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                tracing::info!(polls, elapsed = ?start.elapsed(), "gossip not settled but continuing anyway");
                break;
            }
            () = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if okay >= OKAY_REQUIRED {
            tracing::info!(elapsed = ?start.elapsed(), "gossip settled; proceeding");
            break;
        }
        let n = peer.members().len();
        if n == members {
            okay += 1;
        } else {
            okay = 0;
            tracing::info!(polls, before = members, now = n, elapsed = ?start.elapsed(), "gossip not settled");
        }
        members = n;
        polls += 1;
    }
    peer.set_ready();
}
