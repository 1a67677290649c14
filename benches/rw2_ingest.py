#!/usr/bin/env python3
"""Remote-write ingest, protocol 2.0 against 1.0, same data, same Strata binary, one run.

Builds the same requests in both protocols (hand-encoded protobuf, snappy through
`cramjam`): `--series` series of 5 labels, `--samples` samples each per request, and sends
`--requests` of them with `--concurrency` senders to a fresh Strata per protocol, A B A B
with `--repeat 2`. Prints per protocol: samples/s, server CPU µs per sample, and bytes per
sample on the wire.

    python3 benches/rw2_ingest.py --strata $CARGO_TARGET_DIR/release/strata
"""
import argparse
import concurrent.futures
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request

import cramjam


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


def sample(ts, v):
    return field(1, 1, struct.pack("<d", v)) + field(2, 0, varint(ts))


def series_labels(req, i):
    return [("__name__", "bench_metric_%d" % (i % 50)), ("instance", "host-%d" % i),
            ("job", "rw2bench"), ("region", "r%d" % (i % 4)), ("req", str(req % 8))]


def v1_request(req, series, samples, t0):
    out = bytearray()
    for i in range(series):
        ts = bytearray()
        for n, v in sorted(series_labels(req, i)):
            ts += ld(1, ld(1, n.encode()) + ld(2, v.encode()))
        for k in range(samples):
            ts += ld(2, sample(t0 + k * 15000, float(i + k)))
        out += ld(1, bytes(ts))
    return bytes(cramjam.snappy.compress_raw(bytes(out)))


def v2_request(req, series, samples, t0):
    symbols, refs = [""], {"": 0}

    def ref(s):
        if s not in refs:
            refs[s] = len(symbols)
            symbols.append(s)
        return refs[s]

    body = bytearray()
    for i in range(series):
        packed = b"".join(varint(ref(n)) + varint(ref(v)) for n, v in sorted(series_labels(req, i)))
        ts = ld(1, packed)
        for k in range(samples):
            ts += ld(2, sample(t0 + k * 15000, float(i + k)))
        body += ld(5, ts)
    head = b"".join(ld(4, s.encode()) for s in symbols)
    return bytes(cramjam.snappy.compress_raw(head + bytes(body)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(binary, bodies, content_type, concurrency):
    work = tempfile.mkdtemp(prefix="strata-rw2-")
    port = free_port()
    cfg = os.path.join(work, "c.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 15s\n")
    p = subprocess.Popen([binary, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(work, "d"),
                          "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1)
                break
            except Exception:
                time.sleep(0.1)

        def post(body):
            r = urllib.request.Request(url + "/api/v1/write", data=body, method="POST", headers={
                "Content-Type": content_type, "Content-Encoding": "snappy"})
            with urllib.request.urlopen(r, timeout=60) as resp:
                assert resp.status == 204, resp.status

        c0, t0 = cpu_seconds(p.pid), time.time()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as ex:
            list(ex.map(post, bodies))
        return time.time() - t0, cpu_seconds(p.pid) - c0
    finally:
        p.terminate()
        p.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--series", type=int, default=500)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    # Requests follow each other in time (5 minutes each), ending well before now.
    t0 = (int(time.time()) - 24 * 3600) * 1000
    total = args.series * args.samples * args.requests
    protocols = {
        "1.0": ("application/x-protobuf", [v1_request(r, args.series, args.samples, t0 + r * 300_000)
                                           for r in range(args.requests)]),
        "2.0": ("application/x-protobuf;proto=io.prometheus.write.v2.Request",
                [v2_request(r, args.series, args.samples, t0 + r * 300_000) for r in range(args.requests)]),
    }
    results = {k: [] for k in protocols}
    for _ in range(args.repeat):
        for name, (ct, bodies) in protocols.items():
            secs, cpu = run(os.path.abspath(args.strata), bodies, ct, args.concurrency)
            results[name].append((secs, cpu))
    for name, (_, bodies) in protocols.items():
        best = min(results[name])
        wire = sum(len(b) for b in bodies) / total
        print("%s: %.0f samples/s (best of %d), server CPU %.3f us/sample, %.2f bytes/sample on the wire" % (
            name, total / best[0], args.repeat, min(c for _, c in results[name]) / total * 1e6, wire))
    b1, b2 = min(results["1.0"]), min(results["2.0"])
    print("2.0/1.0: throughput %.2fx, CPU per sample %.2fx" % (
        b1[0] / b2[0], min(c for _, c in results["2.0"]) / min(c for _, c in results["1.0"])))


if __name__ == "__main__":
    main()
