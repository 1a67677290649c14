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
"""
import argparse
import json
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


def write_config(path, targets, interval, remote_url, name):
    lines = ["global:", "  scrape_interval: %s" % interval, "  evaluation_interval: 1m",
             "scrape_configs:", "  - job_name: bench", "    static_configs:", "      - targets:"]
    lines += ["          - '%s'" % t for t in targets]
    if remote_url:
        lines += ["remote_write:", "  - url: %s" % remote_url, "    name: %s" % name]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True)
    ap.add_argument("--bench-dir", default=os.path.join(HERE, "..", "..", "shared", "bench"))
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--series-per-target", type=int, default=2000)
    ap.add_argument("--interval", default="5s")
    ap.add_argument("--warmup", type=float, default=20)
    ap.add_argument("--duration", type=float, default=90)
    ap.add_argument("--port", type=int, default=29090)
    ap.add_argument("--exporter-port-base", type=int, default=29100)
    ap.add_argument("--vm-port", type=int, default=29180)
    ap.add_argument("--servers", default="prometheus,strata")
    args = ap.parse_args()
    if not shutil.which("victoria-metrics"):
        raise SystemExit("victoria-metrics is not installed (apt-get install victoria-metrics)")
    work = tempfile.mkdtemp(prefix="strata-rwout-")
    bench = os.path.abspath(args.bench_dir)
    exporter = subprocess.Popen(
        [sys.executable, os.path.join(bench, "exporter.py"), "--targets", str(args.targets),
         "--series-per-target", str(args.series_per_target), "--port-base", str(args.exporter_port_base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    vm = subprocess.Popen(
        ["victoria-metrics", "-storageDataPath=" + os.path.join(work, "vm"),
         "-httpListenAddr=127.0.0.1:%d" % args.vm_port, "-retentionPeriod=100y"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
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
            p.terminate()
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
