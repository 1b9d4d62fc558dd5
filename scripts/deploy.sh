#!/usr/bin/env bash
# make deploy: builds and deploys the whole workspace to a real AWS account with the AWS SAM CLI.
# Not run by the project's checks (they are offline); see docs/deploy.md for the parameters and the
# Identity Center steps. Needs: sam (pip install aws-sam-cli), cargo-lambda and zig (.venv), credentials
# of an admin of the target account in the environment (e.g. AWS_PROFILE), and the region Identity Center is in.
#
#   scripts/deploy.sh                 # first time: sam deploy --guided asks for every parameter, saves samconfig.toml
#   scripts/deploy.sh --no-guided     # later: reuses samconfig.toml
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
for tool in sam cargo-lambda; do
    if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "$ROOT/.venv/bin/$tool" ]]; then
        echo "deploy: $tool not found (docs/deploy.md, 'Before you start')" >&2
        exit 2
    fi
done
export PATH="$ROOT/.venv/bin:$PATH"

# Refuse to deploy what the offline checks reject.
"$ROOT/scripts/check-infra.sh"

# BuildMethod rust-cargolambda: sam runs cargo lambda build for each function (nested network.yaml included).
sam build --template-file infra/template.yaml --beta-features

guided=(--guided)
if [[ "${1:-}" == "--no-guided" ]]; then
    guided=()
    shift
fi
# Nested stack + named IAM policies + SAM transform.
sam deploy "${guided[@]}" \
    --template-file .aws-sam/build/template.yaml \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --resolve-s3 \
    "$@"
