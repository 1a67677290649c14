#!/usr/bin/env bash
# A three-ingester cluster on one machine, for PromQL conformance and benchmarks through
# the front door:
#
#   scripts/cluster.sh STRATA_BIN CONFIG DATA_DIR PORT
#
# Starts a local S3 server (moto_server, when installed) with a bucket, three ingesters
# (`strata` nodes with external label ingester=1|2|3, shipping their blocks to the bucket),
# and the front door on 127.0.0.1:PORT with CONFIG: remote writes go to all three ingesters
# (replication factor 3, acknowledged on 2; STRATA_CLUSTER_RF=1 shards without replicas),
# PromQL queries run on the ingesters' workers (--distributed.listen-address on each,
# --distributed.worker on the front door), each series read from the ingester it was
# written to first; STRATA_CLUSTER_DISTRIBUTED=0 reads the ingesters by remote read instead
# and merges the replicas (--query.replica-label=ingester). STRATA_CLUSTER_NODES (1-3,
# default 3) sets the number of ingesters; STRATA_CLUSTER_NO_BUCKET=1 leaves the bucket
# out. Everything stops when this script is stopped; the nodes' CPU time is then in
# DATA_DIR/cluster-cpu.txt.
#
# With promqltest.py:
#   python3 ../shared/conformance/promqltest.py --target remote-write \
#     --url http://127.0.0.1:19090 \
#     --start-cmd "$PWD/scripts/cluster.sh $PWD/target/release/strata {config} {data_dir} {port}" \
#     --files '../shared/conformance/testdata/*.test' -j 2
set -euo pipefail
bin=$1 cfg=$2 data=$3 port=$4
mkdir -p "$data"
pids=()
# On the way out: stop every node, then record the CPU time they used (the shell's
# `times`: its children's user and system time) in DATA_DIR/cluster-cpu.txt.
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; times >"$data/cluster-cpu.txt"; }
trap stop EXIT
trap 'exit 0' INT TERM
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits until the node of PID answers on PORT as the node of data directory DIR (a port
# picked free may be taken meanwhile, or still served by a node that is stopping).
ours() {
  local pid=$1 port=$2 dir=$3
  for _ in $(seq 1200); do
    kill -0 "$pid" 2>/dev/null || return 1
    # Ours (its flags name our data directory), and ready (its storage is open).
    curl -sf "http://127.0.0.1:$port/api/v1/status/flags" 2>/dev/null | grep -qF "\"$dir\"" \
      && curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

objstore=()
if [ "${STRATA_CLUSTER_NO_BUCKET:-0}" != 1 ] && command -v moto_server >/dev/null 2>&1; then
  mp=$(free_port)
  moto_server -H 127.0.0.1 -p "$mp" >"$data/moto.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do curl -sf -X PUT "http://127.0.0.1:$mp/blocks" >/dev/null && break; sleep 0.05; done
  printf 'type: S3\nconfig:\n  bucket: blocks\n  endpoint: 127.0.0.1:%s\n  access_key: local\n  secret_key: local\n  insecure: true\n' "$mp" >"$data/bucket.yml"
  objstore=(--objstore.config-file="$data/bucket.yml")
fi

ingesters=()
workers=()
for i in $(seq "${STRATA_CLUSTER_NODES:-3}"); do
  printf 'global:\n  scrape_interval: 1m\n  external_labels:\n    ingester: "%s"\n' "$i" >"$data/ingester-$i.yml"
  for attempt in 1 2 3 4 5; do
    p=$(free_port) wp=$(free_port)
    "$bin" --config.file="$data/ingester-$i.yml" --storage.tsdb.path="$data/ingester-$i" \
      --web.listen-address="127.0.0.1:$p" --log.level="${STRATA_LOG_LEVEL:-warn}" "${objstore[@]}" \
      --distributed.listen-address="127.0.0.1:$wp" &
    pid=$!
    if ours "$pid" "$p" "$data/ingester-$i"; then break; fi
    kill "$pid" 2>/dev/null || true
    [ "$attempt" = 5 ] && { echo "ingester $i did not start" >&2; exit 1; }
  done
  pids+=("$pid")
  ingesters+=(--distributor.ingester="http://127.0.0.1:$p")
  workers+=(--distributed.worker="http://127.0.0.1:$wp")
done
[ "${STRATA_CLUSTER_DISTRIBUTED:-1}" = 0 ] && workers=()

"$bin" --config.file="$cfg" --storage.tsdb.path="$data/front-door" \
  --web.listen-address="127.0.0.1:$port" --log.level="${STRATA_LOG_LEVEL:-warn}" \
  --distributor.replication-factor="${STRATA_CLUSTER_RF:-3}" --query.replica-label=ingester "${ingesters[@]}" "${workers[@]}" &
pids+=($!)
wait -n
