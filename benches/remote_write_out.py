#!/usr/bin/env python3
"""Remote-write sender, Strata vs the Debian `prometheus`, same scrape load, one run.

Both servers scrape the shared harness's synthetic exporter (../shared/bench/exporter.py,
not copied) and forward everything through `remote_write` to the Debian
`victoria-metrics` (the receiver; started here). Each server runs twice, with and without
its `remote_write` entry, so the sender's own CPU is the difference. Printed per server:
samples forwarded per second (`prometheus_remote_storage_samples_total`), CPU seconds of
the run with and without the sender, the sender's CPU per forwarded sample, and what the
receiver holds at the end.

    python3 benches/remote_write_out.py --strata $CARGO_TARGET_DIR/release/strata \
        [--targets 20 --series-per-target 2000 --interval 5s --duration 90]

That steady state is bounded by the scrape load: both senders keep up, so it measures CPU per
sample, not how fast a sender can go. `--backlog SECONDS` measures the sender's ceiling
instead, once per server in turn: the server scrapes the load with the receiver up for
`--warmup` seconds, then VictoriaMetrics is stopped for SECONDS (connections refused, the
sender retries) while the samples pile up in the WAL, then it is started again on the same
port and data directory, and the script polls the server's /metrics every `--poll` seconds
while the sender catches up. The scrapes go on throughout. Printed per server:

* backlog samples: samples appended (`prometheus_tsdb_head_samples_appended_total`) minus
  samples accepted by the receiver, when the receiver answers again;
* drain s: from then until the sender has had that many more samples accepted. It sends the
  WAL in order, so that is when the backlog is out (interpolated between polls);
* drain samples/s: backlog / drain s. The samples scraped meanwhile queue behind the backlog
  and are not part of it; the sender is saturated the whole time, so this is its ceiling on
  this machine (which it shares with the receiver, the exporter and the scrapes);
* peak shards (desired): the largest `prometheus_remote_storage_shards` and
  `_shards_desired` seen from the receiver's return to the end of the drain. Both servers
  reshard every 10 s (Prometheus 2.42 dynamically too, `calculateDesiredShards`; Strata
  follows the same calculation) within `max_shards`; a drain shorter than that runs on the
  shards it started with;
* CPU µs/sample: the server's utime+stime (/proc/<pid>/stat) over the drain (to the first
  poll after it), divided by the samples accepted in it; also the cores the server, the
  receiver and the whole machine used then (the machine at 2.0 means the ceiling is CPU);
* lag 0 after s: when `prometheus_remote_storage_highest_timestamp_in_seconds -
  prometheus_remote_storage_queue_highest_sent_timestamp_seconds` was first within
  `--caught-up-lag` (default 2 intervals, at least 2 s) with a sent timestamp past the
  receiver's return; polling stops there, or `--lag-wait` seconds after the drain, or at
  `--drain-timeout`. Strata's `highest_timestamp_in_seconds` is the newest sample its queue
  has *read* from the WAL (Prometheus's: the newest appended), so during the outage its lag
  reads small; the drain end is therefore taken from the counts, not from the lag.

Samples accepted = `prometheus_remote_storage_samples_total` for Strata; Prometheus 2.42 adds
to that counter on every attempt, so its `_samples_retried_total` and `_samples_failed_total`
are subtracted (an attempt under way still counts: up to a batch per shard). Both servers
get the same `queue_config`, written explicitly and printed: `--max-shards` 50,
`--max-samples-per-send` 2000, `--capacity` 10000 (per shard, in both), `--batch-send-deadline`
5s, `--min-backoff` 30ms, `--max-backoff` 1s (Prometheus's default is 5s; 1s so that neither
waits long to see the receiver back). The backlog mode's load defaults to 50 targets x 2000
series every 1s (100k samples/s); with `--backlog 90` (9M samples) a run of both servers
takes 4-5 minutes on 2 cores. `--min-shards N` (default 1) pins the shards from the start, for
comparing the senders apart from their resharding:

    python3 benches/remote_write_out.py --strata $CARGO_TARGET_DIR/release/strata --backlog 90 \
        [--targets 50 --series-per-target 2000 --interval 1s --warmup 15 --max-shards 50]
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def http_text(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_ready(url, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            http_text(url, 2)
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit("not ready: " + url)


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return total


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def write_config(path, targets, interval, remote_url, name, queue=None):
    lines = ["global:", "  scrape_interval: %s" % interval, "  evaluation_interval: 1m",
             "scrape_configs:", "  - job_name: bench", "    static_configs:", "      - targets:"]
    lines += ["          - '%s'" % t for t in targets]
    if remote_url:
        lines += ["remote_write:", "  - url: %s" % remote_url, "    name: %s" % name]
        if queue:
            lines += ["    queue_config:"] + ["      %s: %s" % kv for kv in queue.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def run_server(name, cmd_tpl, work, targets, args, remote_url):
    data = os.path.join(work, "%s-%s" % (name, "rw" if remote_url else "plain"))
    os.makedirs(data, exist_ok=True)
    cfg = os.path.join(data, "config.yml")
    write_config(cfg, targets, args.interval, remote_url, name)
    port = args.port
    cmd = cmd_tpl.format(config=cfg, data_dir=os.path.join(data, "tsdb"), port=port)
    proc = subprocess.Popen(cmd.split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready("http://127.0.0.1:%d/-/ready" % port)
        time.sleep(args.warmup)
        c0, t0 = cpu_seconds(proc.pid), time.time()
        m0 = metric_sum(http_text("http://127.0.0.1:%d/metrics" % port), "prometheus_remote_storage_samples_total")
        time.sleep(args.duration)
        c1, t1 = cpu_seconds(proc.pid), time.time()
        m1 = metric_sum(http_text("http://127.0.0.1:%d/metrics" % port), "prometheus_remote_storage_samples_total")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"cpu_s": c1 - c0, "secs": t1 - t0, "forwarded": m1 - m0}


def stop_proc(proc, timeout=120):
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_vm(data, port):
    return subprocess.Popen(
        ["victoria-metrics", "-storageDataPath=" + data,
         "-httpListenAddr=127.0.0.1:%d" % port, "-retentionPeriod=100y"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def machine_busy_seconds():
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def metric_value(text, name):
    """The value of an unlabelled (or single) series, or None when absent."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


def accepted_samples(name, text):
    """Samples the receiver accepted. Prometheus 2.42 adds to `samples_total` on every
    attempt (failed ones too), so its retried and failed samples are taken off."""
    n = metric_sum(text, "prometheus_remote_storage_samples_total")
    if name == "prometheus":
        n -= metric_sum(text, "prometheus_remote_storage_samples_retried_total")
        n -= metric_sum(text, "prometheus_remote_storage_samples_failed_total")
    return n


def parse_seconds(d):
    units = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if d.endswith(u):
            return float(d[:-len(u)]) * units[u]
    return float(d)


def snapshot(name, port, pid, vm_pid=None):
    text = http_text("http://127.0.0.1:%d/metrics" % port)
    return {
        "t": time.time(),
        "loadavg": os.getloadavg()[0],
        "cpu": cpu_seconds(pid),
        "vm_cpu": cpu_seconds(vm_pid) if vm_pid else 0.0,
        "busy": machine_busy_seconds(),
        "appended": metric_sum(text, "prometheus_tsdb_head_samples_appended_total"),
        "accepted": accepted_samples(name, text),
        "shards": metric_sum(text, "prometheus_remote_storage_shards"),
        "shards_desired": metric_sum(text, "prometheus_remote_storage_shards_desired"),
        "pending": metric_sum(text, "prometheus_remote_storage_samples_pending"),
        "highest_ts": metric_value(text, "prometheus_remote_storage_highest_timestamp_in_seconds") or 0.0,
        "sent_ts": metric_value(text, "prometheus_remote_storage_queue_highest_sent_timestamp_seconds") or 0.0,
    }


def run_backlog(name, cmd_tpl, work, targets, args, queue):
    """One server: scrape with the receiver up (warm-up), receiver down for --backlog
    seconds, receiver back; the drain is polled until the backlog is out."""
    data = os.path.join(work, "%s-backlog" % name)
    os.makedirs(data, exist_ok=True)
    cfg = os.path.join(data, "config.yml")
    remote = "http://127.0.0.1:%d/api/v1/write" % args.vm_port
    write_config(cfg, targets, args.interval, remote, name, queue)
    vm_data = os.path.join(work, "vm-%s" % name)
    health = "http://127.0.0.1:%d/health" % args.vm_port
    vm = start_vm(vm_data, args.vm_port)
    proc = None
    try:
        wait_ready(health)
        cmd = cmd_tpl.format(config=cfg, data_dir=os.path.join(data, "tsdb"), port=args.port)
        proc = subprocess.Popen(cmd.split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready("http://127.0.0.1:%d/-/ready" % args.port)
        time.sleep(args.warmup)
        live = snapshot(name, args.port, proc.pid, vm.pid)
        print("   receiver down for %.0f s (sent so far: %d samples)" % (args.backlog, live["accepted"]), flush=True)
        stop_proc(vm, 60)
        down = snapshot(name, args.port, proc.pid)
        time.sleep(args.backlog)
        before_up = snapshot(name, args.port, proc.pid)
        vm = start_vm(vm_data, args.vm_port)
        wait_ready(health, timeout=60)
        up = snapshot(name, args.port, proc.pid, vm.pid)
        target = up["appended"]           # the sender is done with the backlog at this count
        backlog = up["appended"] - up["accepted"]
        print("   receiver back after %.1f s down; backlog %d samples" % (up["t"] - down["t"], backlog), flush=True)
        polls = [up]
        crossed = None      # (time, poll index) when accepted reached `target`
        lag_ok = None
        while True:
            time.sleep(args.poll)
            s = snapshot(name, args.port, proc.pid, vm.pid)
            polls.append(s)
            prev = polls[-2]
            if crossed is None and s["accepted"] >= target:
                span = s["accepted"] - prev["accepted"]
                frac = (target - prev["accepted"]) / span if span > 0 else 1.0
                crossed = (prev["t"] + frac * (s["t"] - prev["t"]), len(polls) - 1)
            if lag_ok is None and s["sent_ts"] >= up["t"] and \
                    s["highest_ts"] - s["sent_ts"] <= args.caught_up_lag:
                lag_ok = s["t"]
            if crossed is not None and lag_ok is not None:
                break
            if crossed is not None and s["t"] - crossed[0] > args.lag_wait:
                print("   lag not back within %.1f s %.0f s after the backlog was out" % (
                    args.caught_up_lag, args.lag_wait), flush=True)
                break
            if s["t"] - up["t"] > args.drain_timeout:
                print("   drain not finished after %.0f s" % args.drain_timeout, flush=True)
                break
        # Rows first, then the sender's count: the sender may only be ahead of the receiver.
        vm_rows = metric_sum(http_text(health.replace("/health", "/metrics")), "vm_rows_inserted_total")
        last = snapshot(name, args.port, proc.pid)
    finally:
        if proc is not None:
            stop_proc(proc)
        stop_proc(vm, 60)
    end_i = crossed[1] if crossed else len(polls) - 1
    end = polls[end_i]
    drain_s = (crossed[0] if crossed else end["t"]) - up["t"]
    win = end["t"] - up["t"]
    sent = end["accepted"] - up["accepted"]
    outage_s = before_up["t"] - down["t"]
    timeline = []
    for i in range(1, len(polls)):
        p0, p1 = polls[i - 1], polls[i]
        timeline.append({"t": round(p1["t"] - up["t"], 2),
                         "rate": (p1["accepted"] - p0["accepted"]) / (p1["t"] - p0["t"]),
                         "shards": p1["shards"], "desired": p1["shards_desired"],
                         "lag_s": round(p1["highest_ts"] - p1["sent_ts"], 2), "pending": p1["pending"]})
    return {
        "backlog_samples": backlog,
        "loadavg_start_end": [live["loadavg"], os.getloadavg()[0]],
        "drained": crossed is not None,
        "drain_s": drain_s,
        "drain_samples_per_s": backlog / drain_s if crossed else sent / win,
        "accepted_in_drain_window": sent,
        "lag_ok_after_s": lag_ok - up["t"] if lag_ok else None,
        "peak_shards": max(p["shards"] for p in polls[:end_i + 1]),
        "peak_shards_desired": max(p["shards_desired"] for p in polls[:end_i + 1]),
        "cpu_us_per_sample": (end["cpu"] - up["cpu"]) / sent * 1e6 if sent else None,
        "server_cores_drain": (end["cpu"] - up["cpu"]) / win,
        "receiver_cores_drain": (end["vm_cpu"] - up["vm_cpu"]) / win,
        "machine_cores_drain": (end["busy"] - up["busy"]) / win,
        "server_cores_outage": (before_up["cpu"] - down["cpu"]) / outage_s,
        "scraped_per_s_outage": (before_up["appended"] - down["appended"]) / outage_s,
        "receiver_rows_after_restart": vm_rows,
        "accepted_after_restart": last["accepted"] - before_up["accepted"],
        "timeline": timeline,
    }


def print_backlog(results):
    cols = ("server", "backlog samples", "drain s", "drain samples/s", "peak shards (desired)",
            "CPU µs/sample", "lag 0 after s", "server cores", "receiver cores", "machine cores")
    if not results:
        return
    rows = []
    for name, r in results.items():
        rows.append((name, "%d" % r["backlog_samples"],
                     ("%.1f" % r["drain_s"]) + ("" if r["drained"] else " (not done)"),
                     "%.0f" % r["drain_samples_per_s"],
                     "%d (%d)" % (r["peak_shards"], math.ceil(r["peak_shards_desired"])),
                     "%.2f" % r["cpu_us_per_sample"] if r["cpu_us_per_sample"] else "-",
                     "%.1f" % r["lag_ok_after_s"] if r["lag_ok_after_s"] is not None else "-",
                     "%.2f" % r["server_cores_drain"], "%.2f" % r["receiver_cores_drain"],
                     "%.2f" % r["machine_cores_drain"]))
    w = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print(" | ".join(c.ljust(w[i]) for i, c in enumerate(cols)))
    print("-+-".join("-" * x for x in w))
    for r in rows:
        print(" | ".join(v.ljust(w[0]) if i == 0 else v.rjust(w[i]) for i, v in enumerate(r)))
    if "prometheus" in results and "strata" in results:
        p, s = results["prometheus"], results["strata"]
        print("drain samples/s: strata/prometheus = %.2f" % (s["drain_samples_per_s"] / p["drain_samples_per_s"]))
        if p["cpu_us_per_sample"] and s["cpu_us_per_sample"]:
            print("CPU µs per forwarded sample during the drain: strata/prometheus = %.2f" % (
                s["cpu_us_per_sample"] / p["cpu_us_per_sample"]))


def main_backlog(args, cmds, work, targets):
    queue = {
        "capacity": args.capacity,
        "max_shards": args.max_shards,
        "min_shards": args.min_shards,
        "max_samples_per_send": args.max_samples_per_send,
        "batch_send_deadline": args.batch_send_deadline,
        "min_backoff": args.min_backoff,
        "max_backoff": args.max_backoff,
    }
    offered = args.targets * args.series_per_target / parse_seconds(args.interval)
    print("load: %d targets x %d series every %s = %.0f samples/s; receiver down %.0f s "
          "(about %.0f samples of backlog)" % (args.targets, args.series_per_target, args.interval,
                                               offered, args.backlog, offered * args.backlog))
    print("queue_config (both servers): " + ", ".join("%s=%s" % kv for kv in queue.items()))
    results = {}
    for name in args.servers.split(","):
        if name == "prometheus" and not shutil.which("prometheus"):
            print("skipping prometheus: not installed")
            continue
        print("== %s: backlog drain" % name, flush=True)
        r = run_backlog(name, cmds[name], work, targets, args, queue)
        results[name] = r
        for e in r["timeline"][::max(1, int(round(5 / args.poll)))]:
            print("   +%6.1fs  %9.0f samples/s  shards %3d (desired %3d)  lag %7.1fs  pending %d" % (
                e["t"], e["rate"], e["shards"], e["desired"], e["lag_s"], e["pending"]))
        print("   receiver rows inserted since its restart: %d; accepted by the sender meanwhile: %d" % (
            r["receiver_rows_after_restart"], r["accepted_after_restart"]), flush=True)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "timeline"} for k, v in results.items()},
                     indent=2))
    print_backlog(results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--bench-dir", default=os.path.join(HERE, "..", "..", "shared", "bench"))
    ap.add_argument("--targets", type=int, default=None, help="20 (steady), 50 (--backlog)")
    ap.add_argument("--series-per-target", type=int, default=2000)
    ap.add_argument("--interval", default=None, help="5s (steady), 1s (--backlog)")
    ap.add_argument("--warmup", type=float, default=None, help="20 (steady), 15 (--backlog)")
    ap.add_argument("--duration", type=float, default=90)
    ap.add_argument("--backlog", type=float, default=0, metavar="SECONDS",
                    help="backlog-drain mode: the receiver is down for SECONDS, then the drain is measured")
    ap.add_argument("--poll", type=float, default=0.5, help="--backlog: seconds between /metrics polls")
    ap.add_argument("--drain-timeout", type=float, default=180,
                    help="--backlog: give up on the drain after this many seconds")
    ap.add_argument("--lag-wait", type=float, default=30,
                    help="--backlog: after the backlog is out, wait at most this long for the lag to be ~0")
    ap.add_argument("--caught-up-lag", type=float, default=None,
                    help="--backlog: highest appended - highest sent timestamp counted as caught up "
                         "(default max(2 x interval, 2s))")
    ap.add_argument("--max-shards", type=int, default=50)
    ap.add_argument("--min-shards", type=int, default=1)
    ap.add_argument("--max-samples-per-send", type=int, default=2000)
    ap.add_argument("--capacity", type=int, default=10000)
    ap.add_argument("--batch-send-deadline", default="5s")
    ap.add_argument("--min-backoff", default="30ms")
    ap.add_argument("--max-backoff", default="1s")
    ap.add_argument("--port", type=int, default=29090)
    ap.add_argument("--exporter-port-base", type=int, default=29100)
    ap.add_argument("--vm-port", type=int, default=29180)
    ap.add_argument("--servers", default="prometheus,strata")
    args = ap.parse_args()
    backlog = args.backlog > 0
    if args.targets is None:
        args.targets = 50 if backlog else 20
    if args.interval is None:
        args.interval = "1s" if backlog else "5s"
    if args.warmup is None:
        args.warmup = 15 if backlog else 20
    if args.caught_up_lag is None:
        args.caught_up_lag = max(2 * parse_seconds(args.interval), 2.0)
    if not shutil.which("victoria-metrics"):
        raise SystemExit("victoria-metrics is not installed (apt-get install victoria-metrics)")
    work = tempfile.mkdtemp(prefix="strata-rwout-")
    bench = os.path.abspath(args.bench_dir)
    exporter = subprocess.Popen(
        [sys.executable, os.path.join(bench, "exporter.py"), "--targets", str(args.targets),
         "--series-per-target", str(args.series_per_target), "--port-base", str(args.exporter_port_base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The backlog mode starts (and stops) a receiver of its own for each server.
    vm = None if backlog else subprocess.Popen(
        ["victoria-metrics", "-storageDataPath=" + os.path.join(work, "vm"),
         "-httpListenAddr=127.0.0.1:%d" % args.vm_port, "-retentionPeriod=100y"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if vm is not None:
            wait_ready("http://127.0.0.1:%d/health" % args.vm_port)
        ports = min(args.targets, 100)
        targets = ["127.0.0.1:%d" % (args.exporter_port_base + (i % ports)) for i in range(args.targets)]
        if args.targets > ports:
            raise SystemExit("at most 100 targets")
        wait_ready("http://%s/metrics" % targets[0])
        cmds = {
            "prometheus": "prometheus --config.file={config} --storage.tsdb.path={data_dir}"
                          " --web.listen-address=127.0.0.1:{port}",
            "strata": os.path.abspath(args.strata) + " --config.file={config} --storage.tsdb.path={data_dir}"
                      " --web.listen-address=127.0.0.1:{port} --log.level=warn",
        }
        if backlog:
            main_backlog(args, cmds, work, targets)
            return
        remote = "http://127.0.0.1:%d/api/v1/write" % args.vm_port
        results = {}
        for name in args.servers.split(","):
            if name == "prometheus" and not shutil.which("prometheus"):
                print("skipping prometheus: not installed")
                continue
            print("== %s with remote_write" % name, flush=True)
            rw = run_server(name, cmds[name], work, targets, args, remote)
            print("== %s without remote_write" % name, flush=True)
            plain = run_server(name, cmds[name], work, targets, args, None)
            rate = rw["forwarded"] / rw["secs"]
            extra = rw["cpu_s"] / rw["secs"] - plain["cpu_s"] / plain["secs"]
            results[name] = {
                "forwarded_per_s": rate,
                "cpu_per_s_with_sender": rw["cpu_s"] / rw["secs"],
                "cpu_per_s_without": plain["cpu_s"] / plain["secs"],
                "sender_cpu_us_per_sample": extra / rate * 1e6 if rate else None,
                "total_cpu_us_per_forwarded_sample": rw["cpu_s"] / rw["forwarded"] * 1e6 if rw["forwarded"] else None,
            }
        print(json.dumps(results, indent=2))
        if "prometheus" in results and "strata" in results:
            p, s = results["prometheus"], results["strata"]
            print("forwarded samples/s: strata/prometheus = %.2f" % (s["forwarded_per_s"] / p["forwarded_per_s"]))
            if p["total_cpu_us_per_forwarded_sample"] and s["total_cpu_us_per_forwarded_sample"]:
                print("CPU per forwarded sample (whole server): strata/prometheus = %.2f" % (
                    s["total_cpu_us_per_forwarded_sample"] / p["total_cpu_us_per_forwarded_sample"]))
            if p["sender_cpu_us_per_sample"] and s["sender_cpu_us_per_sample"]:
                print("sender CPU per sample (with - without): strata/prometheus = %.2f" % (
                    s["sender_cpu_us_per_sample"] / p["sender_cpu_us_per_sample"]))
        n = metric_sum(http_text("http://127.0.0.1:%d/metrics" % args.vm_port), "vm_rows_inserted_total")
        print("receiver rows inserted: %d" % n)
    finally:
        for p in (exporter, vm):
            if p is None:
                continue
            p.terminate()
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
