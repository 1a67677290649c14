//! The notifier as an Alertmanager cluster, end to end: three `strata` processes gossip on
//! loopback UDP; an alert posted to all three is notified once (the second and third wait
//! `position × --cluster.peer-timeout` and find the first one's notification log entry);
//! a silence made on one node mutes on another; with one node killed the other two still
//! notify once, and the restarted node catches up the silences made meanwhile from its
//! peers; an alert group acknowledged on one node is acknowledged on every node; `/api/v2/status`, `/metrics` and `amtool cluster show` report the members.
//! With `--cluster.key-file`, a node holding another key is no member and its silences
//! are not merged. Bad cluster flags are refused, flags that cannot act are warned about.

mod common;
#[path = "common/http_stub.rs"]
mod http_stub;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, get_json, now_ms, poll, post_json, reqwest, rfc3339};
use serde_json::{Value, json};

/// `--cluster.peer-timeout` of the test nodes: the third waits twice this.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// `group_wait` of the test route.
const GROUP_WAIT: Duration = Duration::from_secs(1);

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// A webhook receiver: every POSTed body, with when it arrived.
struct Hook {
    port: u16,
    got: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Hook {
    fn start() -> Hook {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let g = g.clone();
                std::thread::spawn(move || serve(conn, &g));
            }
        });
        Hook { port, got }
    }

    /// Notifications for the group of `alertname`, with their arrival times.
    fn for_group(&self, alertname: &str) -> Vec<Instant> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, b)| b["groupLabels"]["alertname"] == alertname)
            .map(|(t, _)| *t)
            .collect()
    }
}

fn serve(conn: TcpStream, got: &Mutex<Vec<(Instant, Value)>>) {
    let Ok(mut w) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::new(conn);
    while let Some(req) = http_stub::read_request(&mut r) {
        got.lock().expect("lock").push((Instant::now(), req.body));
        let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    }
}

/// One cluster member: its gossip port (kept across restarts) and its process.
struct Node {
    gossip: u16,
    server: Option<Server>,
}

impl Node {
    fn server(&self) -> &Server {
        self.server.as_ref().expect("node running")
    }

    fn url(&self, path: &str) -> String {
        self.server().url(path)
    }
}

fn start_node(data: &Path, am: &str, gossip: u16, peers: &[u16]) -> Server {
    start_node_with(data, am, gossip, peers, &[])
}

fn start_node_with(data: &Path, am: &str, gossip: u16, peers: &[u16], extra: &[String]) -> Server {
    let mut args = vec![
        am.to_owned(),
        format!("--cluster.listen-address=127.0.0.1:{gossip}"),
        format!("--cluster.peer-timeout={}s", PEER_TIMEOUT.as_secs()),
        "--cluster.gossip-interval=100ms".to_owned(),
        "--cluster.settle-timeout=10s".to_owned(),
    ];
    args.extend(
        peers
            .iter()
            .map(|p| format!("--cluster.peer=127.0.0.1:{p}")),
    );
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(data, &args)
}

fn post_alert(node: &Node, alertname: &str) {
    let alert = json!([{
        "labels": {"alertname": alertname, "job": "api"},
        "startsAt": rfc3339(now_ms()),
        "endsAt": rfc3339(now_ms() + 3_600_000),
    }]);
    let (code, body) = post_json(&node.url("/api/v2/alerts"), &alert);
    assert_eq!(code, 200, "{body}");
}

fn add_silence(node: &Node, alertname: &str) -> String {
    let s = json!({
        "matchers": [{"name": "alertname", "value": alertname, "isRegex": false, "isEqual": true}],
        "startsAt": rfc3339(now_ms()),
        "endsAt": rfc3339(now_ms() + 3_600_000),
        "createdBy": "ops",
        "comment": "maintenance",
    });
    let (code, body) = post_json(&node.url("/api/v2/silences"), &s);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    v["silenceID"].as_str().expect("silenceID").to_owned()
}

fn lists_silence(node: &Node, id: &str) -> bool {
    get_json(&node.url("/api/v2/silences"))
        .as_array()
        .is_some_and(|l| l.iter().any(|s| s["id"] == id))
}

/// Acknowledges the group of `alertname` on `node`; returns the acknowledgement's id.
fn acknowledge(node: &Node, alertname: &str) -> String {
    let key = group_of(node, alertname)
        .and_then(|g| g["groupKey"].as_str().map(str::to_owned))
        .expect("group listed");
    let body = json!({"groupKey": key, "createdBy": "alice", "comment": "on it",
        "endsAt": rfc3339(now_ms() + 3_600_000)});
    let (code, text) = post_json(&node.url("/api/v2/acks"), &body);
    assert_eq!(code, 200, "{text}");
    serde_json::from_str::<Value>(&text).expect("json")["ackID"]
        .as_str()
        .expect("ackID")
        .to_owned()
}

/// The alert group of `alertname` on `node`, once listed.
fn group_of(node: &Node, alertname: &str) -> Option<Value> {
    poll(15, || {
        let groups = get_json(&node.url("/api/v2/alerts/groups"));
        groups
            .as_array()?
            .iter()
            .find(|g| g["labels"]["alertname"] == alertname)
            .cloned()
    })
}

/// Whether `node`'s group of `alertname` carries the acknowledgement `id`.
fn acknowledged_by(node: &Node, alertname: &str, id: &str) -> bool {
    group_of(node, alertname).is_some_and(|g| g["acknowledgement"]["id"] == id)
}

/// `/api/v2/status` `cluster` once it is ready with `n` peers.
fn ready_with(node: &Node, n: usize, secs: u64) -> Option<Value> {
    poll(secs, || {
        let c = get_json(&node.url("/api/v2/status"))["cluster"].clone();
        (c["status"] == "ready" && c["peers"].as_array().is_some_and(|p| p.len() == n)).then_some(c)
    })
}

/// Waits for the first notification of `alertname`'s group, then long enough for every
/// later node's turn (position × peer timeout, plus gossip slack), and returns them all.
fn notified_once_window(hook: &Hook, alertname: &str, posted: Instant) -> Vec<Instant> {
    let first = poll(20, || hook.for_group(alertname).first().copied())
        .unwrap_or_else(|| panic!("{alertname} was not notified"));
    let latest_turn = posted.max(first) + GROUP_WAIT + PEER_TIMEOUT * 2 + Duration::from_secs(2);
    while Instant::now() < latest_turn {
        std::thread::sleep(Duration::from_millis(100));
    }
    hook.for_group(alertname)
}

#[test]
fn three_nodes_notify_once_share_silences_and_survive_a_dead_node() {
    let dir = tempfile::tempdir().expect("tmp");
    let hook = Hook::start();
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &cfg,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: {}s\n  group_interval: 1m\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{}/hook\n",
            GROUP_WAIT.as_secs(),
            hook.port
        ),
    )
    .expect("write config");
    let am = format!("--alertmanager.config.file={}", cfg.display());
    let gossip: Vec<u16> = (0..3).map(|_| free_udp_port()).collect();
    let peers_of = |i: usize| -> Vec<u16> {
        (0..3)
            .filter(|j| *j != i)
            .filter_map(|j| gossip.get(j).copied())
            .collect()
    };
    let data = |i: usize| dir.path().join(format!("node{i}"));
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| Node {
            gossip: gossip[i],
            server: Some(start_node(&data(i), &am, gossip[i], &peers_of(i))),
        })
        .collect();

    // (1) Every node lists the three members once settled.
    let mut names = Vec::new();
    for n in &nodes {
        let c = ready_with(n, 3, 30).unwrap_or_else(|| {
            panic!(
                "not ready with 3 peers: {}",
                get_json(&n.url("/api/v2/status"))["cluster"]
            )
        });
        let peers = c["peers"].as_array().expect("peers");
        assert!(peers.iter().any(|p| p["name"] == c["name"]), "{c}");
        assert!(
            peers.iter().all(|p| p["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:"))),
            "{c}"
        );
        let mut ns: Vec<String> = peers
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        ns.sort();
        if names.is_empty() {
            names = ns;
        } else {
            assert_eq!(names, ns, "every node lists the same members");
        }
    }
    let metrics = reqwest::blocking_client()
        .get(nodes[0].url("/metrics"))
        .send()
        .expect("metrics")
        .text();
    for m in [
        "alertmanager_cluster_enabled 1",
        "alertmanager_cluster_members 3",
        "alertmanager_peer_position ",
    ] {
        assert!(metrics.contains(m), "no {m:?} in /metrics");
    }

    // (1) The same alert posted to all three nodes is notified once. (2) Meanwhile a
    // silence made on node 1 reaches node 3 and mutes an alert posted to node 3 only.
    let posted = Instant::now();
    for n in &nodes {
        post_alert(n, "Everywhere");
    }
    let silence = add_silence(&nodes[0], "OnlyOnThree");
    assert!(
        poll(15, || lists_silence(&nodes[2], &silence).then_some(())).is_some(),
        "node 3 does not list node 1's silence"
    );
    post_alert(&nodes[2], "OnlyOnThree");
    let muted = poll(15, || {
        let alerts = get_json(&nodes[2].url("/api/v2/alerts?filter=alertname%3D%22OnlyOnThree%22"));
        (alerts[0]["status"]["silencedBy"] == json!([silence])).then_some(())
    });
    assert!(muted.is_some(), "node 3 does not mute by node 1's silence");
    let muted_posted = Instant::now();
    let got = notified_once_window(&hook, "Everywhere", posted);
    assert_eq!(got.len(), 1, "notified {} times, not once", got.len());
    while Instant::now() < muted_posted + GROUP_WAIT + PEER_TIMEOUT * 2 + Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        hook.for_group("OnlyOnThree").is_empty(),
        "a silenced alert was notified"
    );

    // An acknowledgement made on node 1 holds on node 3 (its group there carries it).
    let ack = acknowledge(&nodes[0], "Everywhere");
    assert!(
        poll(15, || acknowledged_by(&nodes[2], "Everywhere", &ack)
            .then_some(()))
        .is_some(),
        "node 3's group does not carry node 1's acknowledgement: {}",
        get_json(&nodes[2].url("/api/v2/acks"))
    );

    // Garbage on a gossip port is dropped; the node stays a healthy member.
    let junk = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for payload in [&b"\x00"[..], &[0xff; 1400][..], b"{\"not\":\"chitchat\"}"] {
        let _ = junk.send_to(payload, ("127.0.0.1", nodes[0].gossip));
    }

    // (3) Node 2 dies: the other two still notify once; a silence made while it is down
    // reaches it when it comes back (from its peers: its files do not have it).
    if let Some(s) = nodes[1].server.take() {
        s.kill9();
    }
    let posted = Instant::now();
    post_alert(&nodes[0], "WhileTwoIsDown");
    post_alert(&nodes[2], "WhileTwoIsDown");
    let while_down = add_silence(&nodes[0], "Later");
    let got = notified_once_window(&hook, "WhileTwoIsDown", posted);
    assert_eq!(got.len(), 1, "notified {} times, not once", got.len());
    nodes[1].server = Some(start_node(&data(1), &am, gossip[1], &peers_of(1)));
    assert!(
        poll(20, || (lists_silence(&nodes[1], &while_down)
            && lists_silence(&nodes[1], &silence))
        .then_some(()))
        .is_some(),
        "the restarted node did not catch up the silences"
    );
    // (Its alerts died with it; the acknowledgement comes back from the peers.)
    assert!(
        poll(20, || {
            let acks = get_json(&nodes[1].url("/api/v2/acks?active=true"));
            acks.as_array()?
                .iter()
                .any(|a| a["id"] == ack)
                .then_some(())
        })
        .is_some(),
        "the restarted node did not catch up the acknowledgement"
    );
    // The dead incarnation leaves the member list; the new one is in it.
    for n in &nodes {
        assert!(
            ready_with(n, 3, 30).is_some(),
            "not back to 3 peers: {}",
            get_json(&n.url("/api/v2/status"))["cluster"]
        );
    }
    let c = get_json(&nodes[0].url("/api/v2/status"))["cluster"].clone();
    let restarted = get_json(&nodes[1].url("/api/v2/status"))["cluster"]["name"].clone();
    assert!(
        c["peers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["name"] == restarted)),
        "{c}"
    );

    // (4) amtool reads the same (its extended output lists the peers), and a silence it
    // adds through node 1 is queried through node 3 and expired there, which ends it on
    // node 1.
    let amtool = "/usr/bin/amtool";
    if Path::new(amtool).exists() {
        let o = Command::new(amtool)
            .arg(format!("--alertmanager.url={}", nodes[0].url("")))
            .args(["cluster", "show", "--output=extended"])
            .output()
            .expect("run amtool");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.contains("ready"), "{out}");
        let me = c["name"].as_str().expect("name");
        assert!(out.contains("Node Name:") && out.contains(me), "{out}");
        for p in c["peers"].as_array().expect("peers") {
            for field in ["name", "address"] {
                let v = p[field].as_str().expect("string");
                assert!(out.contains(v), "amtool does not list {v}: {out}");
            }
        }
        let am_on = |node: &Node, args: &[&str]| {
            let o = Command::new(amtool)
                .arg(format!("--alertmanager.url={}", node.url("")))
                .args(args)
                .output()
                .expect("run amtool");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).trim().to_owned()
        };
        let id = am_on(
            &nodes[0],
            &[
                "silence",
                "add",
                "alertname=ByAmtool",
                "--comment=deploy",
                "--author=ops",
                "--duration=1h",
            ],
        );
        let found = poll(15, || {
            let q = am_on(&nodes[2], &["silence", "query", "-q", "alertname=ByAmtool"]);
            (q == id).then_some(())
        });
        assert!(
            found.is_some(),
            "amtool on node 3 does not find node 1's silence {id}"
        );
        am_on(&nodes[2], &["silence", "expire", &id]);
        let ended = poll(15, || {
            let q = am_on(&nodes[0], &["silence", "query", "-q", "alertname=ByAmtool"]);
            q.is_empty().then_some(())
        });
        assert!(
            ended.is_some(),
            "the expiry on node 3 does not end the silence on node 1"
        );
    } else {
        eprintln!(
            "SKIP amtool cluster show: amtool is not installed (Debian prometheus-alertmanager)"
        );
    }

    for n in &mut nodes {
        if let Some(s) = n.server.take() {
            s.stop();
        }
    }
}

#[test]
fn a_cluster_key_keeps_nodes_without_it_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .expect("write config");
    let am = format!("--alertmanager.config.file={}", cfg.display());
    let (key, other) = (dir.path().join("key"), dir.path().join("other-key"));
    std::fs::write(&key, "the-shared-cluster-secret\n").expect("write key");
    std::fs::write(&other, "somebody-else's-secret-key\n").expect("write key");
    let short = dir.path().join("short-key");
    std::fs::write(&short, "short\n").expect("write key");
    let with = |k: &Path| vec![format!("--cluster.key-file={}", k.display())];
    let gossip: Vec<u16> = (0..3).map(|_| free_udp_port()).collect();
    let data = |i: usize| dir.path().join(format!("node{i}"));
    // Nodes 1 and 2 share the key; node 3 holds another one and knows both.
    let nodes: Vec<Node> = [
        (vec![gossip[1]], with(&key)),
        (vec![gossip[0]], with(&key)),
        (vec![gossip[0], gossip[1]], with(&other)),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (peers, extra))| Node {
        gossip: gossip[i],
        server: Some(start_node_with(&data(i), &am, gossip[i], &peers, &extra)),
    })
    .collect();
    for n in &nodes[..2] {
        assert!(
            ready_with(n, 2, 30).is_some(),
            "the keyed nodes are not two members: {}",
            get_json(&n.url("/api/v2/status"))["cluster"]
        );
    }
    assert!(
        ready_with(&nodes[2], 1, 30).is_some(),
        "the stranger sees members"
    );
    let strangers = poll(15, || {
        let m = reqwest::blocking_client()
            .get(nodes[0].url("/metrics"))
            .send()
            .ok()?
            .text();
        m.contains("strata_cluster_unauthenticated_members 1")
            .then_some(())
    });
    assert!(strangers.is_some(), "node 1 does not count the stranger");

    // The stranger's silence is made first; node 2's reaches node 1, the stranger's not.
    let foreign = add_silence(&nodes[2], "Foreign");
    let shared = add_silence(&nodes[1], "Shared");
    assert!(
        poll(15, || lists_silence(&nodes[0], &shared).then_some(())).is_some(),
        "node 2's silence does not reach node 1"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !lists_silence(&nodes[0], &foreign),
        "a stranger's silence was merged"
    );
    assert!(
        !lists_silence(&nodes[2], &shared),
        "the stranger merged a keyed silence"
    );

    // A key shorter than 16 bytes is refused at start, naming the flag.
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg(&am)
        .arg(format!("--storage.tsdb.path={}", data(3).display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .arg("--cluster.listen-address=127.0.0.1:9094")
        .args(with(&short))
        .output()
        .expect("run strata");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--cluster.key-file") && err.contains("16 bytes"),
        "{err}"
    );
    for mut n in nodes {
        if let Some(s) = n.server.take() {
            s.stop();
        }
    }
}

#[test]
fn bad_cluster_flags_are_refused_and_flags_without_effect_warned_about() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .expect("write config");
    let am = format!("--alertmanager.config.file={}", cfg.display());
    for (flag, bad) in [
        (
            "--cluster.listen-address",
            "--cluster.listen-address=nonsense",
        ),
        ("--cluster.peer", "--cluster.peer=no-port"),
        ("--cluster.peer-timeout", "--cluster.peer-timeout=soon"),
        ("--cluster.gossip-interval", "--cluster.gossip-interval=0s"),
        ("--cluster.key-file", "--cluster.key-file=/nonexistent/key"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg(&am)
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--cluster.listen-address=127.0.0.1:9094")
            .arg(bad)
            .output()
            .expect("run strata");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(err.contains(flag), "{bad}: {err}");
    }

    // Without --cluster.listen-address the notifier reports clustering disabled.
    let s = Server::start(&dir.path().join("data"), &[&am]);
    let c = get_json(&s.url("/api/v2/status"))["cluster"].clone();
    assert_eq!(c, json!({"status": "disabled", "peers": []}));
    let metrics = reqwest::blocking_client()
        .get(s.url("/metrics"))
        .send()
        .expect("metrics")
        .text();
    assert!(
        metrics.contains("alertmanager_cluster_enabled 0"),
        "{metrics}"
    );
    assert!(!metrics.contains("alertmanager_cluster_members"));
    s.stop();

    // Flags that cannot act are warned about at start, before any other setting is
    // checked (the bad retention then stops these runs at once).
    for (args, warning) in [
        (
            vec![am.as_str(), "--cluster.peer=127.0.0.1:9094"],
            "--cluster.peer has no effect without --cluster.listen-address",
        ),
        (
            vec!["--cluster.listen-address=127.0.0.1:9094"],
            "--cluster.listen-address has no effect without --alertmanager.config.file",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data2").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--storage.tsdb.retention.time=bad")
            .args(args)
            .output()
            .expect("run strata");
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(log.contains(warning), "no warning {warning:?} in:\n{log}");
    }
}
