//! Two members on loopback: state (silences, log entries, acknowledgements) made before
//! and after joining reaches the other,
//! membership and positions agree, and the gossip settles.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::*;
use crate::notifier::acks::{AckInput, DEFAULT_ACK_RETENTION_MS};
use crate::notifier::config::parse_matchers;
use crate::notifier::nflog::Entry;
use crate::notifier::silences::{DEFAULT_RETENTION_MS, SilenceInput, SilenceState};

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap()
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_share_silences_the_notification_log_and_acknowledgements() {
    let (a, b) = (free_udp_port(), free_udp_port());
    let opts = |me: u16, peer: u16| ClusterOptions {
        peers: vec![format!("127.0.0.1:{peer}")],
        gossip_interval: Duration::from_millis(50),
        settle_timeout: Duration::from_secs(10),
        ..ClusterOptions::new(format!("127.0.0.1:{me}"))
    };
    let now = now_ms();
    let new = || {
        (
            Arc::new(Silences::open(None, DEFAULT_RETENTION_MS).unwrap()),
            Arc::new(Nflog::open(None, DEFAULT_RETENTION_MS).unwrap()),
            Arc::new(Acks::open(None, DEFAULT_ACK_RETENTION_MS).unwrap()),
        )
    };
    let ((s1, l1, a1), (s2, l2, a2)) = (new(), new());
    // Made before joining (as loaded from the files): announced at join.
    let early = s1
        .set(
            SilenceInput {
                id: None,
                matchers: parse_matchers(r#"alertname="Down""#).unwrap(),
                starts_at: now,
                ends_at: now + 3_600_000,
                created_by: "me".into(),
                comment: "maintenance".into(),
            },
            now,
        )
        .unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let shared = |s: &Arc<Silences>, l: &Arc<Nflog>, k: &Arc<Acks>| Shared {
        silences: s.clone(),
        nflog: l.clone(),
        acks: k.clone(),
    };
    let p1 = join(&opts(a, b), shared(&s1, &l1, &a1), stop.clone())
        .await
        .unwrap();
    let p2 = join(&opts(b, a), shared(&s2, &l2, &a2), stop.clone())
        .await
        .unwrap();

    until("the silence reaches the second member", || {
        s2.get(&early).is_some()
    })
    .await;
    until("both see two members", || {
        p1.members().len() == 2 && p2.members().len() == 2
    })
    .await;
    assert_eq!(p1.members(), p2.members());
    let mut positions = [p1.position(), p2.position()];
    positions.sort_unstable();
    assert_eq!(positions, [0, 1]);
    assert_eq!(
        p1.wait() + p2.wait(),
        super::options::DEFAULT_PEER_TIMEOUT,
        "one waits nothing, the other one peer timeout"
    );

    // Logged on one, in the other's log; expired on the second, expired on the first.
    let entry = Entry {
        firing: [42].into_iter().collect(),
        resolved: Default::default(),
        at: now_ms(),
    };
    l2.log("{}:{}|hook/webhook/0", entry.clone()).unwrap();
    until("the log entry reaches the first member", || {
        l1.get("{}:{}|hook/webhook/0").as_ref() == Some(&entry)
    })
    .await;
    s2.expire(&early, now_ms()).unwrap();
    until("the expiry reaches the first member", || {
        s1.get(&early)
            .is_some_and(|s| s.state(now_ms()) == SilenceState::Expired)
    })
    .await;

    // Acknowledged on the first, held by the second; expired on the second, expired on
    // the first.
    let ack = a1
        .create(
            AckInput {
                group_key: r#"{}:{alertname="Down"}"#.into(),
                receiver: "hook".into(),
                fingerprints: [42].into_iter().collect(),
                created_by: "me".into(),
                comment: "on it".into(),
                ends_at: now_ms() + 3_600_000,
            },
            now_ms(),
        )
        .unwrap();
    until("the acknowledgement reaches the second member", || {
        a2.active_for(&ack.group_key, "hook", now_ms())
            .map(|a| a.id)
            == Some(ack.id.clone())
    })
    .await;
    a2.expire(&ack.id, now_ms()).unwrap();
    until("its expiry reaches the first member", || {
        a1.active_for(&ack.group_key, "hook", now_ms()).is_none()
    })
    .await;
    assert!(ClusterMetrics::get(&p1.metrics.acks_propagated) >= 1);

    until("the gossip settles", || p1.ready() && p2.ready()).await;
    assert_eq!(p1.status(), "ready");
    assert!(ClusterMetrics::get(&p2.metrics.silences_propagated) >= 1);
    assert_eq!(ClusterMetrics::get(&p1.metrics.silences_invalid), 0);

    let _ = stop_tx.send(true);
    p1.leave().await;
    p2.leave().await;
}

#[tokio::test]
async fn a_taken_port_is_an_error_naming_it() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (_tx, stop) = watch::channel(false);
    let s = Arc::new(Silences::open(None, DEFAULT_RETENTION_MS).unwrap());
    let l = Arc::new(Nflog::open(None, DEFAULT_RETENTION_MS).unwrap());
    let k = Arc::new(Acks::open(None, DEFAULT_ACK_RETENTION_MS).unwrap());
    let shared = Shared {
        silences: s,
        nflog: l,
        acks: k,
    };
    let e = join(
        &ClusterOptions::new(format!("127.0.0.1:{port}")),
        shared,
        stop,
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, ClusterError::Start { .. }), "{e}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");
}
