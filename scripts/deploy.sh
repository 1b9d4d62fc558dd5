#!/usr/bin/env bash
# make deploy: builds and deploys the whole workspace to a real AWS account with the AWS SAM CLI.
# Not run by the project's checks (they are offline); see docs/deploy.md for the parameters and the
# Identity Center steps. Needs: the SAM CLI (.venv/sam, scripts/install-infra-tools.sh), cargo-lambda and zig
# (.venv), credentials of an admin of the target account in the environment (e.g. AWS_PROFILE), and the region
# Identity Center is in.
#
# One architecture end to end: scripts/deploy_inputs.py decides it (ARCHITECTURE, else Architecture in PARAMS or
# samconfig.toml, else what this machine builds) and refuses a mismatch before anything is built; the deploy
# plan (scripts/deploy-plan.py) must be workable; then sam build and sam deploy get the same parameters,
# Architecture included.
#
#   PARAMS="IdentityStoreId=d-..." scripts/deploy.sh   # first time: sam deploy --guided offers these values and
#                                                      # asks for the rest, saves samconfig.toml
#   scripts/deploy.sh --no-guided                       # later: reuses samconfig.toml (PARAMS overrides it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$ROOT/.venv/sam/bin:$PATH"
for tool in sam cargo-lambda; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "deploy: $tool not found (make venv installs it; docs/deploy.md, 'Before you start')" >&2
        exit 2
    fi
done

guided=(--guided)
if [[ "${1:-}" == "--no-guided" ]]; then
    guided=()
    shift
fi

# The architecture first: a mismatch is refused before the checks, the build or the deploy.
ARCH="$(python3 scripts/deploy_inputs.py architecture)" || exit 1
STACK="$(python3 scripts/deploy_inputs.py stack-name)"

# Refuse to deploy what the offline checks reject, or a plan that cannot work.
scripts/check-infra.sh
OVERRIDES="$ROOT/target/deploy/parameter-overrides.yaml"
rm -f "$OVERRIDES"
.venv/infra/bin/python scripts/deploy-plan.py --write-overrides "$OVERRIDES"

# BuildMethod rust-cargolambda: sam runs cargo lambda build for each function (nested network.yaml included),
# for the Architectures the template resolves with these parameters.
sam build --template-file infra/template.yaml --beta-features --parameter-overrides "file://$OVERRIDES"

if [[ ${#guided[@]} -gt 0 ]]; then
    echo "deploy: the functions are built for $ARCH - keep 'Parameter Architecture [$ARCH]' as offered."
fi
# Nested stack + named IAM policies + SAM transform.
sam deploy "${guided[@]}" \
    --template-file .aws-sam/build/template.yaml \
    --stack-name "$STACK" \
    --parameter-overrides "file://$OVERRIDES" \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --resolve-s3 \
    "$@"

# The guided prompts could have changed Architecture: what they saved must still match the build.
if [[ ${#guided[@]} -gt 0 ]] && ! ARCHITECTURE="$ARCH" python3 scripts/deploy_inputs.py architecture >/dev/null; then
    echo "deploy: samconfig.toml now saves another Architecture than the $ARCH build, so the functions cannot" \
        "start. Redeploy with scripts/deploy.sh --no-guided: it builds for the saved architecture, or refuses." >&2
    exit 1
fi
