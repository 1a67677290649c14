#!/usr/bin/env python3
"""How a full scan scales with the nodes of a cluster: wall time and CPU per sample.

For each setting (the single node, then scripts/cluster.sh with 1, 2 and 3 ingesters whose
workers run the scan, replication factor 1 unless --rf), loads the same data through remote
write (--series series x --hours at 15 s, one metric name per 100 series), then runs the
full scan `sum(<function>({__name__=~"scan_.*"}[<hours>h]))` --runs times (--function
count_over_time, which reads no values; sum_over_time; quantile_over_time, which decodes and
sorts every value), checking the count (or that every setting's answer is the single
node's), and reports the median wall time, samples/s, and the CPU time all the setting's
strata processes spent per million samples scanned (from /proc, summed over the runs).

    python3 benches/cluster_scan.py --strata $CARGO_TARGET_DIR/release/strata [--series 2000]
        [--hours 24] [--runs 5] [--nodes 1,2,3] [--rf 1] [--function sum_over_time]

Needs cramjam and requests (through soak.py's remote-write encoder). On a 2-core machine three nodes share two cores: the CPU per sample
says what the work costs, the wall time what this machine makes of it.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak import free_port, write_request  # noqa: E402  (the soak bench's remote-write encoder)

HERE = os.path.dirname(os.path.abspath(__file__))
STEP_MS = 15_000


def write(base, body):
    req = urllib.request.Request(base + "/api/v1/write", data=body,
                                 headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                                          "X-Prometheus-Remote-Write-Version": "0.1.0"})
    for _ in range(50):
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                if r.status in (200, 204):
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                raise
        time.sleep(0.2)
    raise RuntimeError("write kept failing")


def load(base, series, hours, end_ms):
    """Writes every series' samples, a window of an hour of all series per request."""
    n = hours * 3600_000 // STEP_MS
    start = end_ms - (n - 1) * STEP_MS
    total = 0
    per_req = 240  # one hour
    for k0 in range(0, n, per_req):
        for s0 in range(0, series, 500):
            batch = []
            for s in range(s0, min(series, s0 + 500)):
                labels = {"__name__": "scan_%d" % (s // 100), "instance": "host-%d" % s, "job": "scan"}
                samples = [(start + k * STEP_MS, float(k % 1000)) for k in range(k0, min(n, k0 + per_req))]
                total += len(samples)
                batch.append((labels, samples))
            write(base, write_request(batch))
    return total


def query(base, q, at):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": at / 1000})
    t = time.monotonic()
    with urllib.request.urlopen(url, timeout=600) as r:
        body = json.loads(r.read())
    dt = time.monotonic() - t
    if body.get("status") != "success":
        raise RuntimeError(str(body)[:300])
    res = body["data"]["result"]
    return dt, float(res[0]["value"][1]) if res else 0.0


def cpu_of(data_dir):
    """CPU seconds (user + system) of every strata process started for `data_dir`."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            if "strata" not in cmd.split(" ")[0] or data_dir not in cmd:
                continue
            with open("/proc/%s/stat" % pid) as f:
                parts = f.read().rsplit(")", 1)[1].split()
            total += (int(parts[11]) + int(parts[12])) / tick
        except OSError:
            continue
    return total


def ready(base, proc, secs=300):
    t = time.monotonic()
    while time.monotonic() - t < secs:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("not ready")


def run(label, cmd, env, data, args, end_ms, expected):
    port = free_port()
    cfg = os.path.join(data, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1m\n")
    argv = [a.format(config=cfg, data_dir=os.path.join(data, "d"), port=port) for a in cmd]
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(data, "server.log"), "w"))
    base = "http://127.0.0.1:%d" % port
    try:
        ready(base, proc)
        if label != "single":
            # The front door answers once its ingesters do; give its queries a moment too.
            time.sleep(1)
        t = time.monotonic()
        n = load(base, args.series, args.hours, end_ms)
        load_s = time.monotonic() - t
        arg = "0.5, " if args.function == "quantile_over_time" else ""
        q = 'sum(%s(%s{__name__=~"scan_.*"}[%dh]))' % (args.function, arg, args.hours)
        _, want = query(base, q, end_ms)  # warm-up
        if args.function == "count_over_time":
            want = n
        elif expected.setdefault("sum", want) != want and abs(want / expected["sum"] - 1) > 1e-9:
            raise RuntimeError("%s: sum %s, the first setting's %s" % (label, want, expected["sum"]))
        times = []
        cpu0 = cpu_of(os.path.join(data, "d"))
        for _ in range(args.runs):
            dt, got = query(base, q, end_ms)
            if abs(got - want) > 1e-9 * abs(want):
                raise RuntimeError("%s: got %s, want %s" % (label, got, want))
            times.append(dt)
        cpu = cpu_of(os.path.join(data, "d")) - cpu0
        med = statistics.median(times)
        return {"setting": label, "query": q, "samples": n, "load_s": round(load_s, 2), "scan_median_s": round(med, 4),
                "samples_per_s": round(n / med), "cpu_s_per_million_samples": round(cpu / args.runs / n * 1e6, 4),
                "runs": [round(x, 4) for x in times]}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--nodes", default="1,2,3")
    ap.add_argument("--rf", type=int, default=1)
    ap.add_argument("--function", default="count_over_time", choices=["count_over_time", "sum_over_time", "quantile_over_time"])
    ap.add_argument("--end", type=int, default=1795593600, help="unix s of the last sample")
    ap.add_argument("--no-single", action="store_true")
    args = ap.parse_args()
    binary = os.path.abspath(args.strata)
    end_ms = args.end * 1000
    settings = []
    if not args.no_single:
        settings.append(("single", [binary, "--config.file={config}", "--storage.tsdb.path={data_dir}",
                                    "--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y"], {}))
    for n in [int(x) for x in args.nodes.split(",") if x]:
        settings.append(("%d node%s, rf %d" % (n, "" if n == 1 else "s", min(args.rf, n)),
                         ["bash", os.path.join(HERE, "..", "scripts", "cluster.sh"), binary, "{config}", "{data_dir}",
                          "{port}"],
                         {"STRATA_CLUSTER_NODES": str(n), "STRATA_CLUSTER_RF": str(min(args.rf, n)),
                          "STRATA_CLUSTER_NO_BUCKET": "1"}))
    out = []
    expected = {}
    for label, cmd, extra in settings:
        data = tempfile.mkdtemp(prefix="strata-scan-")
        try:
            r = run(label, cmd, dict(os.environ, **extra), data, args, end_ms, expected)
        finally:
            shutil.rmtree(data, ignore_errors=True)
        print(json.dumps(r), flush=True)
        out.append(r)
    base = out[0]
    print("\n| setting | scan median | samples/s | vs first | CPU s per 1M samples |")
    print("|---|---|---|---|---|")
    for r in out:
        print("| %s | %.3f s | %.2fM | %.2f× | %.3f |" % (r["setting"], r["scan_median_s"], r["samples_per_s"] / 1e6,
                                                        r["scan_median_s"] / base["scan_median_s"],
                                                        r["cpu_s_per_million_samples"]))


if __name__ == "__main__":
    sys.exit(main())
