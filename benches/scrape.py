#!/usr/bin/env python3
"""Scrape ingest, Strata vs the Debian `prometheus`, same exporter load, one run.

Runs the shared harness's scrape_bench.py (../shared/bench; not copied) for each server in
turn, A B A B with --repeat 2, at the default load (50 targets x 2,000 series every 5s) or a
preset given through --preset stress (50 x 10,000 every 1s for 120s = 500k samples/s), then
prints each figure of both servers and the Strata/Prometheus ratio (compare.py).

    python3 benches/scrape.py --strata $CARGO_TARGET_DIR/release/strata [--preset stress] [--repeat 1]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

PRESETS = {
    "default": [],
    "stress": ["--targets", "50", "--series-per-target", "10000", "--interval", "1s",
               "--duration", "120"],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strata", required=True, help="path of the strata binary (release build)")
    ap.add_argument("--bench-dir", default=os.path.join(HERE, "..", "..", "shared", "bench"))
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--servers", default="prometheus,strata")
    args = ap.parse_args()
    bench = os.path.abspath(args.bench_dir)
    out = args.out_dir or tempfile.mkdtemp(prefix="strata-scrapebench-")
    os.makedirs(out, exist_ok=True)
    strata_cmd = (os.path.abspath(args.strata) + " --config.file={config} --storage.tsdb.path={data_dir}"
                  " --web.listen-address=127.0.0.1:{port} --log.level=warn")
    results = {}
    for rep in range(args.repeat):
        for name in args.servers.split(","):
            if name == "prometheus" and not shutil.which("prometheus"):
                print("skipping prometheus: not installed (apt-get install prometheus)")
                continue
            path = os.path.join(out, "%s-%s-%d.json" % (name, args.preset, rep))
            cmd = [sys.executable, os.path.join(bench, "scrape_bench.py"), "--label", name,
                   "--out", path] + PRESETS[args.preset]
            if name == "strata":
                cmd += ["--server-cmd", strata_cmd]
            print("==", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, cwd=bench)
            results.setdefault(name, []).append(path)
    if "prometheus" in results and "strata" in results:
        for a, b in zip(results["prometheus"], results["strata"]):
            subprocess.run([sys.executable, os.path.join(bench, "compare.py"), a, b], check=True)


if __name__ == "__main__":
    main()
