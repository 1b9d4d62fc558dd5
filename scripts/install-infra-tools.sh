#!/usr/bin/env bash
# Installs the pinned tools of the offline infrastructure checks and of make deploy-plan:
#   .venv/infra: cfn-lint, checkov, aws-sam-translator, parliament (PyPI, tools/requirements-infra.txt)
#                and cfn-guard (crates.io);
#   .venv/sam:   the AWS SAM CLI (PyPI, tools/requirements-sam.txt) for sam validate --lint, sam build, sam deploy.
# Idempotent: a second run only verifies. Needs the package registries once; scripts/check-infra.sh then runs offline.
# Own venvs, not .venv: checkov pins boto3/networkx versions that would downgrade what moto runs on, and the
# SAM CLI pins a boto3 that checkov's pin excludes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${INFRA_VENV:-$ROOT/.venv/infra}"
SAM_VENV="${SAM_VENV:-$ROOT/.venv/sam}"
CFN_GUARD_VERSION="3.2.1"
PYTHON="${PYTHON:-python3}"

for venv in "$VENV" "$SAM_VENV"; do
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "install-infra-tools: creating $venv"
        "$PYTHON" -m venv "$venv"
    fi
done

echo "install-infra-tools: pip install -r tools/requirements-infra.txt"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/tools/requirements-infra.txt"
echo "install-infra-tools: pip install -r tools/requirements-sam.txt (into ${SAM_VENV#"$ROOT/"})"
"$SAM_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/tools/requirements-sam.txt"

if [[ "$("$VENV/bin/cfn-guard" --version 2>/dev/null || true)" != "cfn-guard $CFN_GUARD_VERSION" ]]; then
    echo "install-infra-tools: cargo install cfn-guard $CFN_GUARD_VERSION (about 2-3 minutes on 2 cores, once)"
    # Its own target dir under target/ keeps the build out of the workspace's lock and makes a reinstall incremental.
    cargo install cfn-guard --version "$CFN_GUARD_VERSION" --locked --root "$VENV" \
        --target-dir "$ROOT/target/tools/cfn-guard"
fi

"$VENV/bin/cfn-lint" --version
"$VENV/bin/checkov" --version
"$VENV/bin/python" -c 'import samtranslator; print("aws-sam-translator", samtranslator.__version__)'
"$VENV/bin/python" -c 'import parliament; print("parliament", parliament.__version__)'
"$VENV/bin/cfn-guard" --version
SAM_CLI_TELEMETRY=0 "$SAM_VENV/bin/sam" --version
