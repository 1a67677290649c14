#!/usr/bin/env python3
"""Soak: minutes of mixed load on one Strata process, with hostile requests mixed in.

Starts the given `strata` binary (its embedded default config scrapes itself, plus a
push gateway port) and runs, concurrently, for --minutes:
  - remote writers: batches of current samples over --series series, every acknowledged
    (204) sample remembered;
  - PromQL readers: instant and range queries (rate, sum by, subqueries);
  - SQL readers: aggregations over the samples table;
  - pushers: PUTs to the push gateway;
  - a hostile client: far-future and too-old samples, a metadata bomb, an empty-sample bomb,
    bad snappy, a control character in a label name, the subquery of death, a huge range
    grid with lookback_delta=1y, an SQL cross join, an over-long query text, start/end at
    the i64 limits.
Samples peak RSS (VmHWM) and CPU all along. At the end: every acknowledged sample must be
queryable (count_over_time per series), every hostile request must have been refused with
a 4xx/5xx (never a 2xx for a bomb, never a dropped connection), and the server alive.

    python3 benches/soak.py --strata $CARGO_TARGET_DIR/release/strata --minutes 5

Prints a summary and exits non-zero if any check fails. Needs `requests` and `cramjam`.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import cramjam
import requests


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(tag, payload):
    return varint((tag << 3) | 2) + varint(len(payload)) + payload


def label(name, value):
    return field_bytes(1, name.encode()) + field_bytes(2, value.encode())


def sample(value, ts):
    import struct
    return b"\x09" + struct.pack("<d", value) + b"\x10" + varint(ts & 0xFFFFFFFFFFFFFFFF)


def write_request(series):
    """series: list of (labels dict, [(ts_ms, value)])."""
    out = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for k in sorted(labels):
            ts += field_bytes(1, label(k, labels[k]))
        for t, v in samples:
            ts += field_bytes(2, sample(v, t))
        out += field_bytes(1, bytes(ts))
    return bytes(cramjam.snappy.compress_raw(bytes(out)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def now_ms():
    return int(time.time() * 1000)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def error(self, msg):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(msg)
            self.counts["errors"] = self.counts.get("errors", 0) + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--series", type=int, default=2000)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="strata-soak-")
    port, push_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(work, "server.log"), "w")
    proc = subprocess.Popen(
        [args.strata, f"--storage.tsdb.path={work}/data", f"--web.listen-address=127.0.0.1:{port}",
         f"--pushgateway.listen-address=127.0.0.1:{push_port}", "--query.max-memory=512MB",
         "--query.max-memory-per-query=256MB"],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(base + "/-/ready", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.1)
    else:
        print("server did not become ready")
        return 1

    stats = Stats()
    stop = threading.Event()
    acked = {}  # series index -> acknowledged sample count
    acked_lock = threading.Lock()
    peak = {"rss": 0}

    def rss_sampler():
        while not stop.is_set():
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak["rss"] = max(peak["rss"], int(line.split()[1]) * 1024)
            except OSError:
                pass
            time.sleep(0.5)

    def writer(wid):
        s = requests.Session()
        while not stop.is_set():
            t = now_ms()
            idx = random.sample(range(args.series), 200)
            body = write_request([({"__name__": "soak_metric", "i": str(i), "w": str(wid)}, [(t, float(i))])
                                  for i in idx])
            try:
                r = s.post(base + "/api/v1/write", data=body, timeout=30,
                           headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"})
            except requests.RequestException as e:
                stats.error(f"write: {e}")
                continue
            if r.status_code == 204:
                with acked_lock:
                    for i in idx:
                        acked[(wid, i)] = acked.get((wid, i), 0) + 1
                stats.add("writes_ok")
            elif r.status_code in (429, 503):
                stats.add("writes_retry")
            else:
                stats.error(f"write {r.status_code}: {r.text[:200]}")
            time.sleep(0.05)

    queries = ["sum by (w) (rate(soak_metric[1m]))", "count(soak_metric)", "topk(5, soak_metric)",
               "max_over_time(soak_metric[5m:15s])", "rate(process_cpu_seconds_total[1m])", "up"]

    def reader():
        s = requests.Session()
        while not stop.is_set():
            q = random.choice(queries)
            try:
                if random.random() < 0.5:
                    r = s.get(base + "/api/v1/query", params={"query": q}, timeout=60)
                else:
                    e = time.time()
                    r = s.get(base + "/api/v1/query_range",
                              params={"query": q, "start": e - 600, "end": e, "step": 15}, timeout=60)
                if r.status_code == 200:
                    stats.add("queries_ok")
                else:
                    stats.error(f"query {q}: {r.status_code} {r.text[:200]}")
            except requests.RequestException as e:
                stats.error(f"query: {e}")
            time.sleep(0.1)

    def sql_reader():
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.post(base + "/api/v1/sql", data={"query": "SELECT count(*), max(value) FROM samples WHERE timestamp > now() - INTERVAL '2 minutes'"}, timeout=60)
                if r.status_code == 200:
                    stats.add("sql_ok")
                else:
                    stats.error(f"sql: {r.status_code} {r.text[:200]}")
            except requests.RequestException as e:
                stats.error(f"sql: {e}")
            time.sleep(0.5)

    def pusher():
        s = requests.Session()
        n = 0
        while not stop.is_set():
            n += 1
            body = f"# TYPE soak_push gauge\nsoak_push {n}\n"
            try:
                r = s.put(f"http://127.0.0.1:{push_port}/metrics/job/soak/instance/{n % 20}", data=body, timeout=30)
                if r.status_code in (200, 202):
                    stats.add("pushes_ok")
                else:
                    stats.error(f"push: {r.status_code} {r.text[:200]}")
            except requests.RequestException as e:
                stats.error(f"push: {e}")
            time.sleep(0.1)

    def hostile():
        s = requests.Session()
        year = 365 * 86400 * 1000
        md_bomb = bytes(cramjam.snappy.compress_raw(b"\x1a\x00" * ((32 << 20) // 2 - 64)))
        inner = field_bytes(1, label("__name__", "x")) + b"\x12\x00" * ((30 << 20) // 2)
        sample_bomb = bytes(cramjam.snappy.compress_raw(field_bytes(1, inner)))
        cases = [
            ("future sample", "write", write_request([({"__name__": "evil"}, [(now_ms() + year, 1.0)])]), (400,)),
            ("too-old sample", "write", write_request([({"__name__": "evil"}, [(now_ms() - 30 * 86400 * 1000, 1.0)])]), (400,)),
            ("metadata bomb", "write", md_bomb, (204, 400)),
            ("sample bomb", "write", sample_bomb, (400,)),
            ("bad snappy", "write", b"\xff" * 100, (400,)),
            ("control char in label name", "write", write_request([({"__name__": "evil", "a\x01b": "v"}, [(now_ms(), 1.0)])]), (400,)),
            ("subquery of death", "query", {"query": "max_over_time(vector(1)[30d:1ms])"}, (400, 422)),
            ("huge grid", "query_range", {"query": "soak_metric", "start": 0, "end": time.time(), "step": 1,
                                          "lookback_delta": "1y"}, (400, 422)),
            ("i64 limits", "query_range", {"query": "1", "start": -9.2e15, "end": 9.2e15, "step": 1e15}, (400, 422)),
            ("long query text", "query", {"query": "1+" * 2_000_000 + "1"}, (400, 413, 422)),
            ("sql memory bomb", "sql", {"query": "SELECT array_agg(a.value) FROM samples a CROSS JOIN (SELECT value FROM samples LIMIT 1000) b"}, (400, 422, 503)),
        ]
        while not stop.is_set():
            name, kind, payload, ok = random.choice(cases)
            try:
                if kind == "write":
                    r = s.post(base + "/api/v1/write", data=payload, timeout=60,
                               headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"})
                elif kind == "sql":
                    r = s.post(base + "/api/v1/sql", data=payload, timeout=120)
                else:
                    r = s.post(base + "/api/v1/" + kind, data=payload, timeout=120)
            except requests.RequestException as e:
                stats.error(f"hostile {name}: connection failed: {e}")
                continue
            if r.status_code in ok:
                stats.add("hostile_refused" if r.status_code >= 400 else "hostile_harmless")
            else:
                stats.error(f"hostile {name}: {r.status_code} {r.text[:200]}")
            time.sleep(1.0)

    threads = [threading.Thread(target=rss_sampler)]
    threads += [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    threads += [threading.Thread(target=sql_reader), threading.Thread(target=pusher), threading.Thread(target=hostile)]
    t0 = time.time()
    cpu0 = cpu_seconds(proc.pid)
    for t in threads:
        t.start()
    time.sleep(args.minutes * 60)
    stop.set()
    for t in threads:
        t.join()
    cpu = cpu_seconds(proc.pid) - cpu0
    elapsed = time.time() - t0

    # Every acknowledged sample is queryable.
    missing = 0
    window = int(elapsed) + 120
    r = requests.get(base + "/api/v1/query",
                     params={"query": f"count_over_time(soak_metric[{window}s])"}, timeout=120)
    got = {}
    for item in r.json()["data"]["result"]:
        m = item["metric"]
        got[(int(m["w"]), int(m["i"]))] = int(float(item["value"][1]))
    for key, n in acked.items():
        if got.get(key, 0) < n:
            missing += n - got.get(key, 0)
    alive = requests.get(base + "/-/healthy", timeout=5).status_code == 200
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = "killed after 60 s"

    acked_total = sum(acked.values())
    summary = {
        "minutes": round(elapsed / 60, 2),
        "peak_rss_mb": round(peak["rss"] / 2**20, 1),
        "server_cpu_s": round(cpu, 1),
        "acknowledged_samples": acked_total,
        "missing_acknowledged_samples": missing,
        "alive_at_end": alive,
        "exit_code": code,
        **stats.counts,
    }
    print(json.dumps(summary, indent=2))
    for e in stats.errors[:20]:
        print("error:", e)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("data and log kept in", work)
    ok = missing == 0 and alive and code == 0 and stats.counts.get("errors", 0) == 0
    print("SOAK", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


if __name__ == "__main__":
    sys.exit(main())
