#!/usr/bin/env bash
# `make bench`: builds the four release bootstraps in their own target dir (so the shared debug build is never
# locked for long), builds the benchmark driver, runs it, and prints target/bench/results.md.
# Extra arguments go to the driver, e.g. `scripts/bench.sh --only cold,size --cold-runs 50`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=target/bench
release_dir=target/bench-release
venv=${STUDIO_OPS_VENV:-$root/.venv}
mkdir -p "$out"

# The Python floor must not pay for compiling its own bytecode: make sure boto3's caches exist, as they do in the
# Lambda Python runtime.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for pkg in boto3 botocore s3transfer urllib3 jmespath dateutil; do
  [ -d "$site/$pkg" ] && "$venv/bin/python" -m compileall -q -j 0 "$site/$pkg" >/dev/null || true
done

echo "== building the release bootstraps ($release_dir) =="
started=$(date +%s.%N)
CARGO_TARGET_DIR=$release_dir cargo build --release \
  -p provision-users -p idle-shutdown -p train-on-push -p notify
finished=$(date +%s.%N)
build_seconds=$(awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.1f", b - a }')

echo "== building the driver =="
cargo build -p studio-ops-tests --bin studio-bench

cat > "$out/build.json" <<JSON
{"release_build_seconds": $build_seconds, "command": "CARGO_TARGET_DIR=$release_dir cargo build --release -p provision-users -p idle-shutdown -p train-on-push -p notify", "note": "incremental: 0-60 s when only the functions changed; a full build from scratch is recorded in the closing note of issue 8"}
JSON

echo "== measuring =="
status=0
STUDIO_OPS_FUNCTION_PROFILE=release CARGO_TARGET_DIR=$release_dir STUDIO_OPS_VENV=$venv \
  ./target/debug/studio-bench --out "$out" "$@" || status=$?

# The archives the sizes were taken from must be real zips.
for z in "$out"/zips/*.zip; do
  [ -f "$z" ] && "$venv/bin/python" -m zipfile -t "$z" >/dev/null
done
exit "$status"
