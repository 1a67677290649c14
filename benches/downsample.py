#!/usr/bin/env python3
"""Downsampling (issue #27): what 5m/1h downsampled blocks buy a long-range dashboard query,
and what a short raw retention with long downsampled retention saves on disk.

Data: `--days` days at 15 s of `--series` targets (`job` = job-0..job-9, `instance` =
host-NNN:9100), each with `bench_requests_total` (an integer counter: a per-target rate
with a daily cycle and noise, and a reset about every 20,000 samples) and `bench_temperature`
(a gauge with a daily cycle and noise, two decimals); every tenth target also has
`debug_queue_depth` (an integer random walk). Per-target scrape offsets spread the
timestamps within the 15 s. The data ends at the current wall clock (retention counts back
from the newest sample, never from a time past the wall clock). It is sent by remote write
1.0 (snappy) in time order, one request per 10 minutes of all series, to both servers at
once (the same bytes; nothing is measured during the load):

- **A**: `--storage.tsdb.retention.time=60d`, `storage.tsdb.downsample.after: 40h`.
- **B**: `--storage.tsdb.retention.time=2d`, `downsample.after: 40h`, `retention_5m: 400d`,
  `retention_1h: 400d` (raw kept two days, downsampled data long).

Settling: after the load both servers are stopped gracefully (SIGTERM: the head is written
to blocks and compacted). Each is then started again alone and the script waits until its
maintenance (every 5 s, from 5 s after start) has downsampled every raw block older than
`after` at both resolutions (from the blocks' `meta.json`: sources covered), retention has
removed the raw blocks past it, `downsampled/1h/` holds blocks, and the block directories
have not changed for `--settle` seconds.

Figures (A, alone on the machine):

- the median latency of `--queries` runs (after one warm-up) of three range queries over the
  whole data at `max_source_resolution=0s` (raw) and `auto` (downsampled), interleaved:
  `sum by (job)(rate(bench_requests_total[1h]))` and `max_over_time(bench_temperature[1h])`
  at a 1h step, `sum by (job)(increase(bench_requests_total[6h]))` at a 6h step, starts on a
  whole hour. "bytes read (rchar)" is the median growth of the server's `/proc/<pid>/io`
  `rchar` over a query (every read()/pread() of the process: Parquet files, the request).
  Checked: both answers hold the same series and timestamps with values within 1e-9
  relative, and the `auto` answer carries the info "downsampled data at 1h resolution".
- disk after a graceful stop: bytes per sample sent, of the whole data directory and of
  `blocks/` and `downsampled/` (file sizes summed by os.walk).

B: the same disk figures and B/A, and the dashboard query over the whole range (`auto`):
non-empty, with points older than the 2-day raw retention, compared with A's raw answer;
and how many points older than 2 days the raw-only (`0s`) answer still has (expected 0).

Prints a markdown table, the exact server commands and configs; `--out FILE` writes the
figures as JSON. Exit status 1 if a check failed (listed under "anomalies").

    python3 benches/downsample.py --strata $CARGO_TARGET_DIR/release/strata --out ds.json
    python3 benches/downsample.py --strata $CARGO_TARGET_DIR/debug/strata --series 10 --days 5
"""
import argparse
import concurrent.futures
import json
import math
import os
import re
import random
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import cramjam

STEP_MS = 15_000
BATCH_MS = 600_000  # one request: 10 minutes of every series
HOUR = 3_600_000
DAY = 24 * HOUR
JOBS = 10
AFTER = "40h"
AFTER_MS = 40 * HOUR
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --- remote write 1.0 encoding (as benches/native_histograms.py) ----------------------------

def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(tag, wire, payload):
    return varint((tag << 3) | wire) + payload


def ld(tag, payload):
    return field(tag, 2, varint(len(payload)) + payload)


def labels_pb(pairs):
    return b"".join(ld(1, ld(1, n.encode()) + ld(2, v.encode())) for n, v in sorted(pairs))


PACK_D = struct.Struct("<d").pack


class Target:
    """One (job, instance) with its series' state."""

    def __init__(self, i, rnd):
        self.i = i
        self.job = i % JOBS
        self.offset = (i * 1237) % 15 * 997 % STEP_MS  # scrape offset within the 15 s
        self.rate = 2.0 + (i * 7919 % 97) / 2.0  # requests/s
        self.phase = rnd.random() * 2 * math.pi
        self.counter = float(rnd.randrange(0, 10_000))
        self.temp_base = 35.0 + rnd.random() * 20
        self.queue = 0 if i % 10 == 0 else None
        base = [("instance", "host-%03d:9100" % i), ("job", "job-%d" % self.job)]
        self.lab_req = labels_pb(base + [("__name__", "bench_requests_total")])
        self.lab_temp = labels_pb(base + [("__name__", "bench_temperature")])
        self.lab_queue = labels_pb(base + [("__name__", "debug_queue_depth")])

    def n_series(self):
        return 2 if self.queue is None else 3


def series_count(n):
    return 2 * n + len(range(0, n, 10))


def build_batch(targets, rnd, t_lo, t_hi):
    """One snappy remote-write body: every series' samples with t in [t_lo, t_hi) (targets
    scrape at t_lo + k*15s + offset). Returns (body, samples)."""
    steps = list(range(t_lo, t_hi, STEP_MS))
    # Per offset, the encoded `timestamp` field of every step; the cycle per step.
    ts_cache = {}
    cyc = [2 * math.pi * (t % DAY) / DAY for t in steps]
    body = bytearray()
    n = 0
    for tg in targets:
        tsb = ts_cache.get(tg.offset)
        if tsb is None:
            tsb = [b"\x10" + varint(t + tg.offset) for t in steps]
            ts_cache[tg.offset] = tsb
        head = bytes([0x12, 9 + len(tsb[0])]) + b"\x09"  # Sample{value, timestamp}
        req, temp, queue = [], [], []
        for k, c in enumerate(cyc):
            s = math.sin(c + tg.phase)
            inc = int(tg.rate * 15 * (1 + 0.5 * s) * (0.8 + 0.4 * rnd.random()))
            if rnd.random() < 1 / 20_000:
                tg.counter = float(inc)  # process restart: counts from zero again
            else:
                tg.counter += inc
            req.append(head + PACK_D(tg.counter) + tsb[k])
            v = round(tg.temp_base + 8 * s + (rnd.random() - 0.5) * 2, 2)
            temp.append(head + PACK_D(v) + tsb[k])
            if tg.queue is not None:
                tg.queue = max(0, tg.queue + rnd.randint(-3, 3))
                queue.append(head + PACK_D(float(tg.queue)) + tsb[k])
        body += ld(1, tg.lab_req + b"".join(req))
        body += ld(1, tg.lab_temp + b"".join(temp))
        n += 2 * len(steps)
        if queue:
            body += ld(1, tg.lab_queue + b"".join(queue))
            n += len(steps)
    return bytes(cramjam.snappy.compress_raw(bytes(body))), n


def requests(n_targets, t0, t_end):
    rnd = random.Random(27)
    targets = [Target(i, rnd) for i in range(n_targets)]
    for t in range(t0, t_end, BATCH_MS):
        yield build_batch(targets, rnd, t, min(t + BATCH_MS, t_end))


# --- processes and HTTP -----------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name, strata, cfg, data, port, retention, logdir):
        self.name, self.data, self.port = name, data, port
        self.url = "http://127.0.0.1:%d" % port
        self.cmd = [strata, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
                    "--web.listen-address=127.0.0.1:%d" % port,
                    "--storage.tsdb.retention.time=" + retention]
        self.cfg = cfg
        self.log = os.path.join(logdir, name + ".log")
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        with open(self.log, "a") as f:
            f.write("\n=== start %d: %s\n" % (self.starts, " ".join(map(shlex.quote, self.cmd))))
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen(self.cmd, stdout=self.logf, stderr=subprocess.STDOUT)
        t = time.perf_counter()
        deadline = time.time() + 600
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s at start; see %s" % (self.name, self.proc.returncode, self.log))
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - t
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError("%s did not become ready: %s" % (self.name, self.url))

    def stop(self, timeout):
        """Graceful stop (SIGTERM); returns its seconds."""
        t = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("%s did not stop within %ss after SIGTERM" % (self.name, timeout))
        self.logf.close()
        if rc != 0:
            raise RuntimeError("%s exited with status %s on SIGTERM; see %s" % (self.name, rc, self.log))
        return time.perf_counter() - t

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def io(self):
        with open("/proc/%d/io" % self.proc.pid) as f:
            return {k: int(v) for k, v in (line.split(":") for line in f)}

    def post(self, body):
        req = urllib.request.Request(self.url + "/api/v1/write", data=body, headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})
        for attempt in range(20):
            try:
                with urllib.request.urlopen(req, timeout=300) as r:
                    return
            except urllib.error.HTTPError as e:
                msg = e.read()[:500]
                if e.code in (429, 503) and attempt < 19:
                    time.sleep(0.5)
                    continue
                raise RuntimeError("%s: remote write answered %s: %r" % (self.name, e.code, msg))
            except (ConnectionError, urllib.error.URLError):
                if attempt == 19:
                    raise
                time.sleep(0.5)

    def query_range(self, q, start, end, step, res):
        """(seconds, rchar delta, read_bytes delta, parsed body)."""
        params = urllib.parse.urlencode({"query": q, "start": start / 1000, "end": end / 1000,
                                         "step": step / 1000, "max_source_resolution": res})
        io0 = self.io()
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(self.url + "/api/v1/query_range?" + params, timeout=900) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError("%s: %s (%s) answered %s: %s" % (self.name, q, res, e.code, e.read()[:500]))
        dt = time.perf_counter() - t
        io1 = self.io()
        return dt, io1["rchar"] - io0["rchar"], io1["read_bytes"] - io0["read_bytes"], json.loads(raw)


# --- data directory -----------------------------------------------------------------------------

def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def metas(d):
    out = []
    if not os.path.isdir(d):
        return out
    for b in sorted(os.listdir(d)):
        p = os.path.join(d, b, "meta.json")
        try:
            with open(p) as f:
                out.append(json.load(f))
        except (OSError, ValueError):
            pass  # being written or removed
    return out


def block_state(data, raw_retention_ms):
    """The blocks of `data` and what maintenance still owes: raw blocks older than `after`
    whose sources a resolution does not cover, raw blocks past the raw retention."""
    raw = metas(os.path.join(data, "blocks"))
    ds = {r: metas(os.path.join(data, "downsampled", r)) for r in ("5m", "1h")}
    ref = min(max((m["maxTime"] - 1 for m in raw), default=-1), int(time.time() * 1000))
    uncovered = {}
    for r, ms in ds.items():
        done = {s for m in ms for s in m["compaction"]["sources"]}
        uncovered[r] = [m["ulid"] for m in raw if m["maxTime"] <= ref - AFTER_MS
                        and not set(m["compaction"]["sources"]) <= done]
    expired = [m["ulid"] for m in raw if m["maxTime"] <= ref - raw_retention_ms]
    key = tuple(sorted(m["ulid"] for m in raw)) + tuple(sorted(m["ulid"] for r in ds for m in ds[r]))
    return {"key": key, "raw": len(raw), "5m": len(ds["5m"]), "1h": len(ds["1h"]),
            "uncovered_5m": uncovered["5m"], "uncovered_1h": uncovered["1h"],
            "expired_raw": expired,
            "raw_samples": sum(m["stats"]["numSamples"] for m in raw),
            "raw_range": (min((m["minTime"] for m in raw), default=None), ref)}


def coverage_gaps(data, t0, t_end):
    """Per resolution, the parts of [t0, t_end) longer than a scrape interval that neither a
    raw block nor a downsampled block of that resolution covers (data lost)."""
    raw = [(m["minTime"], m["maxTime"]) for m in metas(os.path.join(data, "blocks"))]
    out = {}
    for r in ("5m", "1h"):
        iv = sorted(raw + [(m["minTime"], m["maxTime"]) for m in metas(os.path.join(data, "downsampled", r))])
        gaps, at = [], t0
        for a, z in iv:
            if a - at > STEP_MS:
                gaps.append((at, a))
            at = max(at, z)
        if t_end - at > STEP_MS:
            gaps.append((at, t_end))
        out[r] = gaps
    return out


def fmt_gap(g, ref):
    return "[%s, %s) (%.1f h, ending %.1f h before the newest sample)" % (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(g[0] / 1000)),
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(g[1] / 1000)), (g[1] - g[0]) / HOUR, (ref - g[1]) / HOUR)


def settle(srv, raw_retention_ms, quiet_s, timeout_s):
    """Waits until maintenance is done (see the docstring); returns (seconds, state, done)."""
    t0 = time.time()
    last_key, since = None, time.time()
    while True:
        st = block_state(srv.data, raw_retention_ms)
        if st["key"] != last_key:
            last_key, since = st["key"], time.time()
        owed = st["uncovered_5m"] or st["uncovered_1h"] or st["expired_raw"] or st["1h"] == 0
        quiet = time.time() - since
        if not owed and quiet >= quiet_s:
            return time.time() - t0, st, True
        if time.time() - t0 > timeout_s or (owed and quiet >= max(120, 4 * quiet_s)):
            return time.time() - t0, st, False
        if srv.proc.poll() is not None:
            raise RuntimeError("%s exited while settling; see %s" % (srv.name, srv.log))
        time.sleep(1)


# --- answers --------------------------------------------------------------------------------------

def series_map(body):
    return {json.dumps(s["metric"], sort_keys=True): s["values"] for s in body["data"]["result"]}


def compare(a, b, rel=1e-9):
    """Differences between two matrix answers: (mismatch count, examples)."""
    ma, mb = series_map(a), series_map(b)
    bad, ex = 0, []
    for k in sorted(set(ma) | set(mb)):
        if k not in ma or k not in mb:
            bad += 1
            ex.append("series %s only in the %s answer" % (k, "first" if k in ma else "second"))
            continue
        va, vb = dict((p[0], p[1]) for p in ma[k]), dict((p[0], p[1]) for p in mb[k])
        for t in sorted(set(va) | set(vb)):
            if t not in va or t not in vb:
                bad += 1
                if len(ex) < 5:
                    ex.append("%s @%s: %s vs %s" % (k, t, va.get(t), vb.get(t)))
                continue
            x, y = float(va[t]), float(vb[t])
            if x == y or (math.isnan(x) and math.isnan(y)):
                continue
            if abs(x - y) > rel * max(abs(x), abs(y)):
                bad += 1
                if len(ex) < 5:
                    ex.append("%s @%s: %r vs %r" % (k, t, x, y))
    return bad, ex


def infos(body):
    return body.get("infos") or []


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def points(body):
    return sum(len(s["values"]) for s in body["data"]["result"])


# --- main ---------------------------------------------------------------------------------------

def write_config(path, downsample):
    with open(path, "w") as f:
        f.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n"
                "storage:\n  tsdb:\n    downsample:\n")
        for k, v in downsample:
            f.write("      %s: %s\n" % (k, v))


def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.2f %s" % (n, unit))
        n /= 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True, help="the strata binary")
    ap.add_argument("--series", type=int, default=200, help="targets (job, instance); each has "
                    "bench_requests_total and bench_temperature, every tenth debug_queue_depth")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--queries", type=int, default=5, help="timed runs per query and resolution")
    ap.add_argument("--port", type=int, default=0, help="A's port (B: port+1); 0: picked by the OS")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (data dirs, logs)")
    ap.add_argument("--settle", type=float, default=10, help="seconds without block changes that end settling")
    ap.add_argument("--settle-timeout", type=float, default=1800)
    ap.add_argument("--stop-timeout", type=float, default=1800)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()
    if args.days * DAY <= AFTER_MS:
        ap.error("--days must span more than downsample.after (40h)")

    now = int(time.time() * 1000)
    t_end = now // BATCH_MS * BATCH_MS  # exclusive; every sample is in the past
    t0 = t_end - args.days * DAY
    tmp = tempfile.mkdtemp(prefix="strata-downsample-")
    anomalies = []
    res = {"series_targets": args.series, "series": series_count(args.series), "days": args.days,
           "t0_ms": t0, "t_end_ms": t_end, "tmpdir": tmp}
    servers = []
    try:
        cfg_a, cfg_b = os.path.join(tmp, "a.yml"), os.path.join(tmp, "b.yml")
        write_config(cfg_a, [("after", AFTER)])
        write_config(cfg_b, [("after", AFTER), ("retention_5m", "400d"), ("retention_1h", "400d")])
        pa = args.port or free_port()
        pb = args.port + 1 if args.port else free_port()
        a = Server("A", args.strata, cfg_a, os.path.join(tmp, "data-a"), pa, "60d", tmp)
        b = Server("B", args.strata, cfg_b, os.path.join(tmp, "data-b"), pb, "2d", tmp)
        servers = [a, b]

        # 1. Load both at once (same bodies), in time order.
        for s in servers:
            s.start()
        print("loading %d series x %d days at 15s into A and B ..." % (res["series"], args.days), flush=True)
        sent = 0
        w0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            pending = []
            for i, (body, n) in enumerate(requests(args.series, t0, t_end)):
                for f in pending:
                    f.result()
                pending = [pool.submit(s.post, body) for s in servers]
                sent += n
                if i % 144 == 143:
                    print("  day %d/%d sent (%.0f s)" % ((i + 1) // 144, args.days, time.perf_counter() - w0), flush=True)
            for f in pending:
                f.result()
        res["samples"] = sent
        res["load_wall_s"] = time.perf_counter() - w0
        for s in servers:
            res["stop_after_load_s_" + s.name] = s.stop(args.stop_timeout)

        # 2. A alone: settle, queries.
        ret_a, ret_b = 60 * DAY, 2 * DAY
        a.start()
        dt, st, ok = settle(a, ret_a, args.settle, args.settle_timeout)
        res["A_settle_s"] = dt
        res["A_blocks"] = {k: st[k] for k in ("raw", "5m", "1h")}
        if not ok:
            anomalies.append("A did not settle within its wait: %s" % json.dumps({k: v for k, v in st.items() if k != "key"}))
        gaps = coverage_gaps(a.data, t0, t_end)
        res["A_coverage_gaps"] = gaps
        for r, g in gaps.items():
            if g:
                anomalies.append("A: no raw or %s block covers %s" % (r, "; ".join(fmt_gap(x, st["raw_range"][1]) for x in g)))
        if st["raw_samples"] != sent:
            anomalies.append("A: raw blocks hold %d samples (meta.json), %d were sent" % (st["raw_samples"], sent))
        start = -(-t0 // HOUR) * HOUR
        end = (t_end - 1) // HOUR * HOUR
        queries = [
            ("dashboard", "sum by (job)(rate(bench_requests_total[1h]))", HOUR),
            ("max_over_time", "max_over_time(bench_temperature[1h])", HOUR),
            ("increase_6h", "sum by (job)(increase(bench_requests_total[6h]))", 6 * HOUR),
        ]
        res["queries"] = {}
        a_raw_dashboard = None
        for key, q, step in queries:
            qs = start if step == HOUR else -(-t0 // step) * step
            runs = {"0s": [], "auto": []}
            answers = {}
            for i in range(args.queries + 1):  # run 0: warm-up, its answers are compared
                for r in ("0s", "auto"):
                    dt, rchar, rb, body = a.query_range(q, qs, end, step, r)
                    if i == 0:
                        answers[r] = body
                    else:
                        runs[r].append((dt, rchar, rb))
            bad, ex = compare(answers["0s"], answers["auto"])
            inf = infos(answers["auto"])
            ds_info = any("downsampled data at 1h" in x for x in inf)
            raw_info = any("downsampled" in x for x in infos(answers["0s"]))
            fig = {"query": q, "start_ms": qs, "end_ms": end, "step_s": step // 1000,
                   "series": len(answers["auto"]["data"]["result"]), "points": points(answers["auto"]),
                   "raw_points": points(answers["0s"]), "mismatches": bad, "mismatch_examples": ex,
                   "auto_infos": inf, "auto_used_1h": ds_info}
            for r in ("0s", "auto"):
                fig[r] = {"median_s": median([x[0] for x in runs[r]]),
                          "median_rchar": median([x[1] for x in runs[r]]),
                          "median_read_bytes": median([x[2] for x in runs[r]]),
                          "runs_s": [x[0] for x in runs[r]]}
            fig["latency_ratio_auto_over_raw"] = fig["auto"]["median_s"] / fig["0s"]["median_s"]
            fig["rchar_ratio_auto_over_raw"] = (fig["auto"]["median_rchar"] / fig["0s"]["median_rchar"]
                                                if fig["0s"]["median_rchar"] else None)
            res["queries"][key] = fig
            if bad:
                anomalies.append("A %s: raw and auto answers differ at %d points, e.g. %s" % (key, bad, ex))
            if not ds_info:
                anomalies.append("A %s: auto answer has no 'downsampled data at 1h' info (infos: %s)" % (key, inf))
            if raw_info:
                anomalies.append("A %s: the 0s answer says it read downsampled data: %s" % (key, infos(answers["0s"])))
            if not answers["auto"]["data"]["result"]:
                anomalies.append("A %s: empty answer" % key)
            if key == "dashboard":
                a_raw_dashboard = answers["0s"]
            print("  A %s: raw %.3f s, auto %.3f s (%d series, %d points, %d mismatches)"
                  % (key, fig["0s"]["median_s"], fig["auto"]["median_s"], fig["series"], fig["points"], bad), flush=True)

        # 3. A's disk after a graceful stop.
        res["A_stop_s"] = a.stop(args.stop_timeout)
        disk = {}
        for s in (a,):
            disk[s.name] = {"total": du(s.data), "blocks": du(os.path.join(s.data, "blocks")),
                            "downsampled": du(os.path.join(s.data, "downsampled")),
                            "downsampled_5m": du(os.path.join(s.data, "downsampled", "5m")),
                            "downsampled_1h": du(os.path.join(s.data, "downsampled", "1h")),
                            "wal": du(os.path.join(s.data, "wal"))}

        # 4. B alone: settle, the old range through downsampled data, disk.
        b.start()
        dt, st, ok = settle(b, ret_b, args.settle, args.settle_timeout)
        res["B_settle_s"] = dt
        res["B_blocks"] = {k: st[k] for k in ("raw", "5m", "1h")}
        res["B_raw_samples_kept"] = st["raw_samples"]
        if not ok:
            anomalies.append("B did not settle within its wait: %s" % json.dumps({k: v for k, v in st.items() if k != "key"}))
        ref = st["raw_range"][1]
        cutoff = ref - ret_b
        res["B_oldest_raw_sample_age_h"] = (ref - st["raw_range"][0]) / HOUR if st["raw_range"][0] is not None else None
        gaps = coverage_gaps(b.data, t0, t_end)
        res["B_coverage_gaps"] = gaps
        for r, g in gaps.items():
            if g:
                anomalies.append("B: no raw or %s block covers %s: raw blocks were removed by retention "
                                 "without being downsampled" % (r, "; ".join(fmt_gap(x, ref) for x in g)))
        q = queries[0][1]
        _, _, _, auto_b = b.query_range(q, start, end, HOUR, "auto")
        _, _, _, raw_b = b.query_range(q, start, end, HOUR, "0s")
        old = sum(1 for s in auto_b["data"]["result"] for p in s["values"] if p[0] * 1000 <= cutoff)
        old_raw = sum(1 for s in raw_b["data"]["result"] for p in s["values"] if p[0] * 1000 <= cutoff)
        bad, ex = compare(a_raw_dashboard, auto_b)
        res["B_dashboard"] = {"series": len(auto_b["data"]["result"]), "points": points(auto_b),
                              "points_older_than_2d": old, "raw_only_points_older_than_2d": old_raw,
                              "mismatches_vs_A_raw": bad, "mismatch_examples": ex, "infos": infos(auto_b)}
        if not auto_b["data"]["result"] or not old:
            anomalies.append("B: the dashboard query (auto) has %d series and %d points older than 2d"
                             % (len(auto_b["data"]["result"]), old))
        if bad:
            anomalies.append("B: the dashboard query (auto) differs from A's raw answer at %d points, e.g. %s" % (bad, ex))
        res["B_stop_s"] = b.stop(args.stop_timeout)
        disk["B"] = {"total": du(b.data), "blocks": du(os.path.join(b.data, "blocks")),
                     "downsampled": du(os.path.join(b.data, "downsampled")),
                     "downsampled_5m": du(os.path.join(b.data, "downsampled", "5m")),
                     "downsampled_1h": du(os.path.join(b.data, "downsampled", "1h")),
                     "wal": du(os.path.join(b.data, "wal"))}
        res["disk_bytes"] = disk
        res["disk_bytes_per_sample"] = {s: {k: v / sent for k, v in d.items()} for s, d in disk.items()}
        res["disk_ratio_B_over_A"] = disk["B"]["total"] / disk["A"]["total"]
        for s in servers:
            with open(s.log, errors="replace") as f:
                lines = [ANSI.sub("", l).strip() for l in f]
            errs = [l for l in lines if " ERROR " in l or "panicked" in l]
            warns = [l for l in lines if " WARN " in l]
            res["log_errors_" + s.name] = len(errs)
            res["log_warnings_" + s.name] = warns[:20]
            if errs:
                anomalies.append("%s's log has %d ERROR/panic lines, first: %s" % (s.name, len(errs), errs[0][:300]))
    except BaseException:
        print("failed; data directories and server logs are in", tmp, file=sys.stderr)
        raise
    finally:
        for s in servers:
            s.kill()
    res["anomalies"] = anomalies
    res["commands"] = {"bench": " ".join(map(shlex.quote, [sys.executable] + sys.argv)),
                       "A": " ".join(map(shlex.quote, a.cmd)), "B": " ".join(map(shlex.quote, b.cmd))}
    with open(cfg_a) as f:
        res["config_A"] = f.read()
    with open(cfg_b) as f:
        res["config_B"] = f.read()
    report(res)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
        print("\nfigures written to", args.out)
    if args.keep:
        print("kept:", tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if anomalies else 0)


def report(r):
    n = r["samples"]
    print("\n## Downsampling: %d series x %d days at 15s = %s samples\n" % (r["series"], r["days"], f"{n:,}"))
    print("| figure | raw (`max_source_resolution=0s`) | downsampled (`auto`) | auto / raw |")
    print("| --- | ---: | ---: | ---: |")
    for key, f in r["queries"].items():
        q = "`%s` over %dd, %dh step (%d series x %d points)" % (
            f["query"], r["days"], f["step_s"] // 3600, f["series"], f["points"] // max(f["series"], 1))
        print("| %s: median latency of %d | %.1f ms | %.1f ms | %.3f× |" % (
            q, len(f["0s"]["runs_s"]), 1e3 * f["0s"]["median_s"], 1e3 * f["auto"]["median_s"],
            f["latency_ratio_auto_over_raw"]))
        rr = f["rchar_ratio_auto_over_raw"]
        print("| same: bytes read (rchar), median | %s | %s | %s |" % (
            fmt_bytes(f["0s"]["median_rchar"]), fmt_bytes(f["auto"]["median_rchar"]),
            "%.3f×" % rr if rr is not None else "n/a"))
        print("| same: answers agree (1e-9 rel.), auto says 1h | %s | | %s |" % (
            "yes" if not f["mismatches"] else "NO: %d points differ" % f["mismatches"],
            "yes" if f["auto_used_1h"] else "NO"))
    d, p = r["disk_bytes"], r["disk_bytes_per_sample"]
    print("\n| disk after a graceful stop, bytes per sample sent | A: 60d raw | B: 2d raw, 400d 5m/1h | B / A |")
    print("| --- | ---: | ---: | ---: |")
    for k, label in (("total", "whole data directory"), ("blocks", "`blocks/` (raw)"),
                     ("downsampled", "`downsampled/`"), ("downsampled_5m", "`downsampled/5m/`"),
                     ("downsampled_1h", "`downsampled/1h/`"), ("wal", "`wal/`")):
        ratio = "%.3f×" % (d["B"][k] / d["A"][k]) if d["A"][k] else "n/a"
        print("| %s | %.3f (%s) | %.3f (%s) | %s |" % (label, p["A"][k], fmt_bytes(d["A"][k]),
                                                        p["B"][k], fmt_bytes(d["B"][k]), ratio))
    print("| blocks after settling (raw / 5m / 1h) | %(raw)d / %(5m)d / %(1h)d |" % r["A_blocks"]
          + " %(raw)d / %(5m)d / %(1h)d | |" % r["B_blocks"])
    bd = r["B_dashboard"]
    print("\nB, dashboard query over the whole %d days (auto): %d series, %d points, %d of them older than "
          "the 2d raw retention; %s A's raw answer. Raw-only (0s): %d points older than 2d (retention removes "
          "whole blocks: B's oldest raw sample is %.1f h old)."
          % (r["days"], bd["series"], bd["points"], bd["points_older_than_2d"],
             "same as" if not bd["mismatches_vs_A_raw"] else "%d points differ from" % bd["mismatches_vs_A_raw"],
             bd["raw_only_points_older_than_2d"], r["B_oldest_raw_sample_age_h"] or 0))
    print("Load: %.1f s for both servers at once; settling after restart: A %.1f s, B %.1f s; "
          "graceful stops after the load: A %.1f s, B %.1f s."
          % (r["load_wall_s"], r["A_settle_s"], r["B_settle_s"], r["stop_after_load_s_A"], r["stop_after_load_s_B"]))
    print("\nCommands:\n\n```sh\n%s\n%s\n%s\n```" % (r["commands"]["bench"], r["commands"]["A"], r["commands"]["B"]))
    print("\nA's config:\n\n```yaml\n%s```\n\nB's config:\n\n```yaml\n%s```" % (r["config_A"], r["config_B"]))
    if r["anomalies"]:
        print("\nanomalies:")
        for x in r["anomalies"]:
            print("-", x)
    else:
        print("\nno anomalies")


if __name__ == "__main__":
    main()
