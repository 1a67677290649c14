#!/usr/bin/env python3
"""Native histograms: Strata against Prometheus (`--enable-feature=native-histograms`), the
same data, side by side in one run.

Generates `--series` cumulative histograms of lognormal observations (`--per-step` new
observations per series every 15 s) over `--hours` hours, in two forms of the same data:
native (schema 3, integer counts, as client_golang sends them) and classic (12 `le`
buckets plus `_sum`/`_count`). Both servers receive the native form by remote write 1.0
in time order (requests of `--batch` samples per series); Strata also gets the classic form
for the query comparison. Prints per server:

- CPU per histogram sample ingested (server process user+system time over the native
  ingest),
- bytes per histogram sample on disk after a graceful stop (whole data directory, native
  form only; the classic form is sent to Strata after a restart, for the queries),
- bytes per histogram sample of the chunk encoding: Strata's head chunks in memory at the
  end of the ingest (`headStats.sampleBytes / numSamples` of `/api/v1/status/tsdb`),
  Prometheus's histogram chunks as its blocks' chunk files hold them,
- the latency of `histogram_quantile(0.99, sum(rate(x[5m])))` over the whole range at a
  60 s step, native, and (Strata) of the classic `sum by (le) (rate(x_bucket[5m]))` form,
  median of `--queries` runs, and that both forms agree.

    python3 benches/native_histograms.py --strata $CARGO_TARGET_DIR/release/strata
"""
import argparse
import json
import math
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import cramjam

SCHEMA = 3
CLASSIC_LE = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
STEP_MS = 15_000


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def zigzag(v):
    return (v << 1) ^ (v >> 63)


def field(tag, wire, payload):
    return varint((tag << 3) | wire) + payload


def ld(tag, payload):
    return field(tag, 2, varint(len(payload)) + payload)


def bucket_index(v):
    """Prometheus's bucket of v > 0 at SCHEMA: the i with 2^((i-1)/8) < v <= 2^(i/8)."""
    return math.ceil(math.log2(v) * (1 << SCHEMA))


def native(counts, zero, total, s, t):
    """An integer `prometheus.Histogram` (spans + delta-encoded counts)."""
    out = field(1, 0, varint(total)) + field(3, 1, struct.pack("<d", s))
    out += field(4, 0, varint(zigzag(SCHEMA))) + field(5, 1, struct.pack("<d", 1e-9))
    out += field(6, 0, varint(zero))
    idx = sorted(counts)
    spans, deltas, prev_i, prev_c = [], [], None, 0
    for i in idx:
        if prev_i is None or i - prev_i > 1:
            spans.append([i if prev_i is None else i - prev_i - 1, 0])
        spans[-1][1] += 1
        deltas.append(counts[i] - prev_c)
        prev_c, prev_i = counts[i], i
    for off, n in spans:
        out += ld(11, field(1, 0, varint(zigzag(off))) + field(2, 0, varint(n)))
    if deltas:
        out += ld(12, b"".join(varint(zigzag(d)) for d in deltas))
    out += field(15, 0, varint(t))
    return out


def labels_pb(pairs):
    return b"".join(ld(1, ld(1, n.encode()) + ld(2, v.encode())) for n, v in sorted(pairs))


def float_sample(t, v):
    return field(1, 1, struct.pack("<d", v)) + field(2, 0, varint(t))


class Series:
    def __init__(self, i, rnd, per_step):
        self.i, self.rnd, self.per_step = i, rnd, per_step
        self.counts, self.zero, self.total, self.sum = {}, 0, 0, 0.0
        self.classic = [0] * len(CLASSIC_LE)
        self.mu = -3 + (i % 7) * 0.3

    def step(self):
        for _ in range(self.per_step):
            v = self.rnd.lognormvariate(self.mu, 1.0)
            self.total += 1
            self.sum += v
            self.counts[bucket_index(v)] = self.counts.get(bucket_index(v), 0) + 1
            for k, le in enumerate(CLASSIC_LE):
                if v <= le:
                    self.classic[k] += 1


def generate(n_series, hours, per_step, t0):
    """Per time step, the native and classic samples of every series (as lists of
    (labels, payload-bytes) per request batch built later)."""
    rnd = random.Random(42)
    series = [Series(i, rnd, per_step) for i in range(n_series)]
    steps = hours * 3600_000 // STEP_MS
    for k in range(steps):
        t = t0 + k * STEP_MS
        row = []
        for s in series:
            s.step()
            row.append((s, native(s.counts, s.zero, s.total, s.sum, t), list(s.classic), s.sum, s.total))
        yield t, row


def requests(n_series, hours, per_step, t0, batch, classic):
    """Snappy remote-write bodies, `batch` steps per request, in time order."""
    pending = []
    for t, row in generate(n_series, hours, per_step, t0):
        pending.append((t, row))
        if len(pending) == batch:
            yield build(pending, classic)
            pending = []
    if pending:
        yield build(pending, classic)


def build(pending, classic):
    n = len(pending[0][1])
    body = bytearray()
    for i in range(n):
        name = [("__name__", "rpc_seconds"), ("instance", "host-%d" % i), ("job", "bench")]
        ts = labels_pb(name)
        for t, row in pending:
            ts += ld(4, row[i][1])
        body += ld(1, ts)
        if not classic:
            continue
        base = [("instance", "host-%d" % i), ("job", "bench")]
        for k, le in enumerate(CLASSIC_LE + [math.inf]):
            b = labels_pb(base + [("__name__", "rpc_seconds_bucket"), ("le", "+Inf" if le == math.inf else repr(float(le)))])
            for t, row in pending:
                v = row[i][2][k] if k < len(CLASSIC_LE) else row[i][4]
                b += ld(2, float_sample(t, float(v)))
            body += ld(1, b)
        for suffix, idx in (("_sum", 3), ("_count", 4)):
            b = labels_pb(base + [("__name__", "rpc_seconds" + suffix)])
            for t, row in pending:
                b += ld(2, float_sample(t, float(row[i][idx])))
            body += ld(1, b)
    return bytes(cramjam.snappy.compress_raw(bytes(body)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(url):
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/-/ready", timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("server did not start: " + url)


def post(url, body):
    req = urllib.request.Request(url + "/api/v1/write", data=body, headers={
        "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0"})
    with urllib.request.urlopen(req, timeout=120) as r:
        if r.status >= 300:
            raise RuntimeError(r.read())


def query_range(url, q, start, end):
    params = urllib.parse.urlencode({"query": q, "start": start / 1000, "end": end / 1000, "step": 60})
    t = time.perf_counter()
    with urllib.request.urlopen(url + "/api/v1/query_range?" + params, timeout=300) as r:
        body = json.load(r)
    return time.perf_counter() - t, body


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def head_bytes_per_sample(url):
    """Strata: the head's sample bytes over its samples (`/api/v1/status/tsdb`)."""
    with urllib.request.urlopen(url + "/api/v1/status/tsdb", timeout=60) as r:
        h = json.load(r)["data"]["headStats"]
    return h["sampleBytes"] / h["numSamples"] if h.get("numSamples") else None


def block_chunk_bytes_per_sample(data):
    """Prometheus: the bytes of its blocks' chunk files over the samples of those blocks."""
    size, samples = 0, 0
    for b in os.listdir(data):
        meta = os.path.join(data, b, "meta.json")
        if not os.path.exists(meta):
            continue
        with open(meta) as f:
            samples += json.load(f)["stats"]["numSamples"]
        cdir = os.path.join(data, b, "chunks")
        size += sum(os.path.getsize(os.path.join(cdir, c)) for c in os.listdir(cdir))
    return size / samples if samples else None


def run(name, cmd, data, url, args, t0, t_end, classic):
    """Native ingest (CPU measured), a graceful stop (disk measured), then a restart, the
    classic form (Strata only, unmeasured) and the queries."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url)
        c0 = cpu_seconds(proc.pid)
        w0 = time.perf_counter()
        for body in requests(args.series, args.hours, args.per_step, t0, args.batch, False):
            post(url, body)
        wall = time.perf_counter() - w0
        ingest_cpu = cpu_seconds(proc.pid) - c0
        head = head_bytes_per_sample(url) if name == "strata" else None
    finally:
        proc.terminate()
        proc.wait(timeout=300)
    n = args.series * (args.hours * 3600_000 // STEP_MS)
    size = du(data)
    chunks = block_chunk_bytes_per_sample(data) if name != "strata" else None
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url)
        if classic:
            for body in requests(args.series, args.hours, args.per_step, t0, args.batch, True):
                post(url, body)
        native_q = "histogram_quantile(0.99, sum(rate(rpc_seconds[5m])))"
        classic_q = "histogram_quantile(0.99, sum by (le) (rate(rpc_seconds_bucket[5m])))"
        lat, lat_c, res, res_c = [], [], None, None
        for _ in range(args.queries):
            d, res = query_range(url, native_q, t0 + 600_000, t_end)
            lat.append(d)
            if classic:
                d, res_c = query_range(url, classic_q, t0 + 600_000, t_end)
                lat_c.append(d)
        points = len(res["data"]["result"][0]["values"]) if res["data"]["result"] else 0
    finally:
        proc.terminate()
        proc.wait(timeout=300)
    out = {
        "server": name,
        "histogram_samples": n,
        "ingest_cpu_us_per_sample": 1e6 * ingest_cpu / n,
        "ingest_wall_s": wall,
        "disk_bytes_per_sample": size / n,
        # In memory: Strata's head chunks (their heap bytes over the samples they hold, at
        # the end of the ingest); Prometheus's histogram chunk encoding, as its blocks' chunk
        # files hold it (chunk bytes over the samples of the blocks).
        "chunk_bytes_per_sample": head if head is not None else chunks,
        "native_query_ms": 1e3 * sorted(lat)[len(lat) // 2],
        "native_query_points": points,
    }
    if classic and lat_c:
        out["classic_query_ms"] = 1e3 * sorted(lat_c)[len(lat_c) // 2]
        a = [float(v[1]) for v in res["data"]["result"][0]["values"]]
        b = [float(v[1]) for v in res_c["data"]["result"][0]["values"]]
        out["native_vs_classic_p99_median_ratio"] = sorted(x / y for x, y in zip(a, b) if y)[len(a) // 2]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--prometheus", default=shutil.which("prometheus"))
    ap.add_argument("--series", type=int, default=50)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--per-step", type=int, default=20)
    ap.add_argument("--batch", type=int, default=120, help="steps per request")
    ap.add_argument("--queries", type=int, default=3)
    args = ap.parse_args()
    now = int(time.time() * 1000) // 60_000 * 60_000
    t0 = now - args.hours * 3600_000
    t_end = t0 + args.hours * 3600_000 - STEP_MS
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1h\n")
        port = free_port()
        data = os.path.join(tmp, "strata")
        results.append(run("strata", [args.strata, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
                                      "--web.listen-address=127.0.0.1:%d" % port],
                           data, "http://127.0.0.1:%d" % port, args, t0, t_end, True))
        if args.prometheus:
            port = free_port()
            data = os.path.join(tmp, "prometheus")
            results.append(run("prometheus", [args.prometheus, "--config.file=" + cfg,
                                              "--storage.tsdb.path=" + data,
                                              "--web.listen-address=127.0.0.1:%d" % port,
                                              "--web.enable-remote-write-receiver",
                                              "--enable-feature=native-histograms"],
                               data, "http://127.0.0.1:%d" % port, args, t0, t_end, False))
        else:
            print("prometheus not installed: Strata alone")
    for r in results:
        print(json.dumps(r))
    if len(results) == 2:
        s, p = results
        for k in ("ingest_cpu_us_per_sample", "disk_bytes_per_sample", "native_query_ms"):
            print("%s strata/prometheus: %.2f" % (k, s[k] / p[k] if p[k] else float("nan")))
    if "classic_query_ms" in results[0]:
        print("strata native/classic query latency: %.2f" % (results[0]["native_query_ms"] / results[0]["classic_query_ms"]))


if __name__ == "__main__":
    main()
