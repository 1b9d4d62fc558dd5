#!/usr/bin/env bash
# make package: release bootstraps of the four functions with cargo lambda, for the one architecture that
# scripts/deploy_inputs.py decides for make package, make deploy-plan and make deploy alike: ARCHITECTURE
# (make variable or environment), else Architecture in PARAMS or samconfig.toml, else arm64 when the Rust
# target aarch64-unknown-linux-gnu is installed and x86_64 otherwise. A choice this machine cannot build is
# refused before anything is built. cargo lambda links with zig against the older glibc of Lambda's
# provided.al2023, which a native build would not run on.
# Writes target/lambda/<function>/bootstrap and bootstrap.zip and reports each one's size.
# (`sam build` builds the same binaries itself through BuildMethod rust-cargolambda; this is the quick check.)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUNCTIONS=(provision-users idle-shutdown train-on-push notify)
CARGO_LAMBDA="${CARGO_LAMBDA:-$ROOT/.venv/bin/cargo-lambda}"
if [[ ! -x "$CARGO_LAMBDA" ]]; then
    CARGO_LAMBDA="$(command -v cargo-lambda || true)"
fi
if [[ -z "$CARGO_LAMBDA" ]]; then
    echo "package: cargo-lambda not found (make venv installs it into .venv)" >&2
    exit 2
fi
# cargo-lambda finds zig through the ziglang package of the same venv.
export PATH="$(dirname "$CARGO_LAMBDA"):$PATH"

ARCH="$(python3 "$ROOT/scripts/deploy_inputs.py" architecture)" || exit 1  # it says why it refuses
case "$ARCH" in
    arm64) ARCH_FLAG=--arm64 ;;
    x86_64) ARCH_FLAG=--x86-64 ;;
esac
echo "package: building $ARCH (deploy with the same: make deploy-plan / make deploy pass Architecture=$ARCH)"

cd "$ROOT"
packages=()
for f in "${FUNCTIONS[@]}"; do packages+=(--package "$f" --bin "$f"); done
start=$(date +%s)
"$CARGO_LAMBDA" lambda build --release "$ARCH_FLAG" "${packages[@]}"
seconds=$(( $(date +%s) - start ))

echo
echo "package: $ARCH release bootstraps (built in ${seconds}s)"
printf '  %-16s %12s %12s\n' function bootstrap zipped
for f in "${FUNCTIONS[@]}"; do
    bootstrap="$ROOT/target/lambda/$f/bootstrap"
    if [[ ! -f "$bootstrap" ]]; then
        echo "package: $bootstrap was not built" >&2
        exit 1
    fi
    # The zip Lambda receives: bootstrap alone, executable, deflated.
    python3 - "$bootstrap" <<'PY'
import os, sys, zipfile
path = sys.argv[1]
target = os.path.join(os.path.dirname(path), "bootstrap.zip")
info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
info.external_attr = 0o100755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with open(path, "rb") as src, zipfile.ZipFile(target, "w") as archive:
    archive.writestr(info, src.read(), compresslevel=9)
PY
    raw=$(stat -c %s "$bootstrap")
    zipped=$(stat -c %s "$ROOT/target/lambda/$f/bootstrap.zip")
    printf '  %-16s %9.1f MiB %9.1f MiB\n' "$f" "$(awk -v b="$raw" 'BEGIN { print b / 1048576 }')" \
        "$(awk -v b="$zipped" 'BEGIN { print b / 1048576 }')"
done
