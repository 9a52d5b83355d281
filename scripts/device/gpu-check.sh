#!/usr/bin/env bash
# Checks hopsd's NVIDIA driver path on a real GPU host: records the raw nvidia-smi output src/gpu/nvidia.ts
# parses, starts one hopsd node (roles metadata,datanode,gpu; --gpus auto), reads GET /api/v1/gpus and the
# GPU lines of /metrics, runs a 1-GPU job (a python3 that prints CUDA_VISIBLE_DEVICES and what torch sees,
# and multiplies two matrices on the GPU), and submits a 2-GPU job, which a one-GPU host must refuse.
#
# Needs on the host: nvidia-smi, python3 (with torch, for the job's GPU part), curl or python3 for HTTP.
# No node: hopsd travels as the single executable `npm run build` makes (dist/hopsd), xz-compressed.
#
#   Here:   npm run build && mkdir -p DIR && xz -9 -T2 -c dist/hopsd > DIR/hopsd.xz
#           cp scripts/device/gpu-check.sh scripts/device/gpu-job.py DIR/
#   There:  OUT=/some/dir bash DIR/gpu-check.sh DIR        (results: $OUT/log and $OUT/results.tgz)
#
# In this workplace (the `run` tool of the device machine), DIR is /work/main/.devcheck (excluded in
# .git/info/exclude, named in `carry`): run with command `bash .devcheck/gpu-check.sh .devcheck`,
# timeout_s 300. Local rehearsal: put a stand-in nvidia-smi (test/gpu/fixtures) first on PATH.
set -u -o pipefail
DIR=$(cd "${1:?usage: gpu-check.sh DIR}" && pwd)
OUT=${OUT:?set OUT}
R=${RESULTS_DIR:-/tmp/gpucheck-results}
DATA=${DATA_DIR:-/tmp/gpucheck-data}
HTTP=${HOPSD_HTTP_ADDR:-127.0.0.1:19870}
P2P=${HOPSD_P2P_ADDR:-127.0.0.1:14001}
export HOPSD_ADDR="http://$HTTP" HOPSD_CACHE_DIR=/tmp/gpucheck-cache
rm -rf "$R" "$DATA" && mkdir -p "$R" "$DATA" "$HOPSD_CACHE_DIR"
exec > >(tee "$OUT/log") 2>&1
pack() { tar czf "$OUT/results.tgz" -C "$R" . 2>/dev/null; }
say() { echo "== $(date -u +%H:%M:%S) $*"; }
# One command, its stdout, stderr and status in $R/NAME.{stdout,stderr,status}.
rec() {
  local name=$1
  shift
  timeout 30 "$@" >"$R/$name.stdout" 2>"$R/$name.stderr"
  echo $? >"$R/$name.status"
  [ -s "$R/$name.stderr" ] || rm -f "$R/$name.stderr"
}
get() { # GET url → stdout (curl if present, else python3)
  if command -v curl >/dev/null; then curl -sS --max-time 10 "$1"
  else python3 -c 'import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=10).read().decode())' "$1"; fi
}

say "host: $(uname -a)"
{ date -u +%Y-%m-%dT%H:%M:%SZ; uname -a; command -v nvidia-smi python3 curl xz; } >"$R/host.txt" 2>&1

say "nvidia-smi raw output (exactly the driver's query and list)"
QUERY='--query-gpu=index,uuid,name,pci.bus_id,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,compute_mode,mig.mode.current,driver_version'
rec query nvidia-smi "$QUERY" --format=csv,noheader,nounits
rec list nvidia-smi -L
rec plain nvidia-smi
rec q nvidia-smi -q
rec query-header nvidia-smi "$QUERY" --format=csv
for f in query list; do echo "-- $f (status $(cat "$R/$f.status"))"; cat "$R/$f.stdout"; done
od -c "$R/query.stdout" | head -20 >"$R/query.od"
pack

say "unpacking hopsd"
BIN=/tmp/gpucheck-hopsd
if command -v xz >/dev/null; then xz -dc "$DIR/hopsd.xz" >"$BIN"
else python3 -c 'import lzma,shutil,sys;shutil.copyfileobj(lzma.open(sys.argv[1]),open(sys.argv[2],"wb"))' "$DIR/hopsd.xz" "$BIN"; fi
chmod +x "$BIN"
"$BIN" --version

say "starting one node"
setsid "$BIN" start --data-dir "$DATA" --roles metadata,datanode,gpu --gpus auto --auth simple \
  --http "$HTTP" --p2p "$P2P" --bootstrap-expect 1 >"$R/node.log" 2>&1 &
NODE=$!
trap 'kill -TERM $NODE 2>/dev/null; sleep 2; kill -KILL $NODE 2>/dev/null; pack' EXIT
for _ in $(seq 120); do [ -s "$DATA/admin.key" ] && get "$HOPSD_ADDR/api/v1/gpus" >/dev/null 2>&1 && break; sleep 0.5; done
export HOPSD_KEY="$DATA/admin.key"
# The GPU worker's first ad reaches the view within a gossip interval or two: wait for a GPU in it.
for _ in $(seq 60); do get "$HOPSD_ADDR/api/v1/gpus" >"$R/gpus.json" 2>&1; grep -q '"uuid"' "$R/gpus.json" && break; sleep 0.5; done
say "GET /api/v1/gpus"; cat "$R/gpus.json"; echo
get "$HOPSD_ADDR/metrics" >"$R/metrics.txt" 2>&1
grep -i gpu "$R/metrics.txt" | grep -v http_request | tee "$R/metrics-gpu.txt"
grep -i gpu "$R/node.log" | head -40 >"$R/node-gpu-lines.log"
pack

say "project and the 1-GPU job"
"$BIN" project create gpucheck 2>&1 | tee "$R/project.out"
PY=$(command -v python3)
"$BIN" job submit --project gpucheck --name cuda --gpus 1 --timeout-s 120 -- "$PY" "$DIR/gpu-job.py" >"$R/submit1.out" 2>&1
echo "submit status $?"; cat "$R/submit1.out"
ID=$(grep -oE '[0-9]+' "$R/submit1.out" | tail -1)
for _ in $(seq 240); do
  "$BIN" job status "$ID" --json >"$R/job1-status.json" 2>&1
  grep -qE '"state": *"(SUCCEEDED|FAILED|KILLED|LOST)"' "$R/job1-status.json" && break
  sleep 0.5
done
say "job $ID"; cat "$R/job1-status.json"
"$BIN" job logs "$ID" >"$R/job1-stdout.txt" 2>&1
"$BIN" job logs "$ID" --stderr >"$R/job1-stderr.txt" 2>&1
echo "-- stdout"; cat "$R/job1-stdout.txt"; echo "-- stderr"; tail -30 "$R/job1-stderr.txt"
get "$HOPSD_ADDR/api/v1/gpus" >"$R/gpus-after.json" 2>&1
pack

say "a 2-GPU job (one GPU here: refused at once, README 'GPU jobs')"
"$BIN" job submit --project gpucheck --name two --gpus 2 -- "$PY" -c 'print(1)' >"$R/submit2.out" 2>&1
echo $? >"$R/submit2.status"
echo "submit status $(cat "$R/submit2.status")"; cat "$R/submit2.out"
"$BIN" job ls --json >"$R/jobs.json" 2>&1; cat "$R/jobs.json"
grep -i gpu "$R/node.log" | head -80 >"$R/node-gpu-lines.log"
say done
