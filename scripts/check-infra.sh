#!/usr/bin/env bash
# Every offline check of infra/: cfn-lint (0 errors), sam validate --lint (0 matches), the SAM transform
# applied locally, checkov (0 failed; skips carry their reason in the template), cfn-guard with the project's
# rules in infra/guard (every rule must PASS on the root template, none may silently SKIP) and the rules' own
# unit tests, parliament over every IAM policy (0 findings; justifications carry their reason in the
# template), and make deploy-plan's rehearsals (a workable plan passes, unworkable ones are refused).
# Exits non-zero when any check fails; prints a summary with timings. Needs no network:
# tools come from .venv/infra and .venv/sam (scripts/install-infra-tools.sh).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${INFRA_VENV:-$ROOT/.venv/infra}"
SAM_VENV="${SAM_VENV:-$ROOT/.venv/sam}"
OUT="$ROOT/target/infra"
FORWARDER="$ROOT/infra/identity-center-forwarder.yaml" # plain CloudFormation, deployed in the Identity Center account
TEMPLATES=("$ROOT/infra/template.yaml" "$ROOT/infra/network.yaml" "$FORWARDER")
TRANSLATED="$OUT/template.json"

for tool in "$VENV/bin/cfn-lint" "$VENV/bin/checkov" "$VENV/bin/cfn-guard" "$VENV/bin/python" "$SAM_VENV/bin/sam"; do
    if [[ ! -x "$tool" ]]; then
        echo "check-infra: $tool is missing - run scripts/install-infra-tools.sh first" >&2
        exit 2
    fi
done
mkdir -p "$OUT"

# checkov: never phone home (no platform key, no guideline download, no telemetry).
export BC_SKIP_MAPPING=TRUE CHECKOV_SKIP_DOWNLOAD=TRUE ANONYMIZED_TELEMETRY_DISABLED=TRUE
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false

declare -a NAMES=() RESULTS=() SECONDS_TAKEN=()
failed=0

step() { # step NAME COMMAND... : runs, records result and time, keeps going so the summary is complete
    local name="$1"; shift
    local start end status
    echo
    echo "==> $name"
    start=$(date +%s.%N)
    "$@"
    status=$?
    end=$(date +%s.%N)
    NAMES+=("$name")
    SECONDS_TAKEN+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')")
    if [[ $status -eq 0 ]]; then RESULTS+=("ok"); else RESULTS+=("FAILED ($status)"); failed=1; fi
}

cfn_lint() {
    # 0 errors required; warnings are printed but do not fail (cfn-lint applies the SAM transform itself).
    "$VENV/bin/cfn-lint" --non-zero-exit-code error -- "${TEMPLATES[@]}"
}

sam_validate() {
    # The SAM CLI's own lint (cfn-lint as sam runs it): any match fails. Offline: no telemetry, no AWS call
    # (--lint needs no credentials), and the weekly PyPI query for a newer SAM CLI counts as done - its config
    # directory is a fresh one under target/ that says it checked just now. Runs outside the repository so an
    # operator's samconfig.toml does not change it.
    local home="$OUT/sam-cli"
    mkdir -p "$home"
    printf '{"telemetryEnabled": false, "lastVersionCheck": %s.0}\n' "$(date +%s)" >"$home/metadata.json" # a float, as SAM writes it
    (cd "$home" && SAM_CLI_TELEMETRY=0 __SAM_CLI_APP_DIR="$home" AWS_DEFAULT_REGION=us-east-1 \
        "$SAM_VENV/bin/sam" validate --lint --region us-east-1 --template-file "$ROOT/infra/template.yaml")
}

sam_transform() {
    "$VENV/bin/python" "$ROOT/scripts/sam-translate.py" "$ROOT/infra/template.yaml" "$TRANSLATED"
}

checkov_scan() {
    local args=(--framework cloudformation --skip-download --compact --quiet --output cli)
    "$VENV/bin/checkov" "${args[@]}" -f "$TRANSLATED" -f "$ROOT/infra/network.yaml" -f "$FORWARDER"
}

guard_validate() {
    local report="$OUT/cfn-guard.txt" status
    "$VENV/bin/cfn-guard" validate --rules "$ROOT/infra/guard" --data "$TRANSLATED" --data "$ROOT/infra/network.yaml" --data "$FORWARDER" \
        --show-summary all >"$report" 2>&1
    status=$?
    # One line per data file and rule.
    grep -E "Status = |\.guard/" "$report" | sed -e "s|$ROOT/||" || true
    if [[ $status -ne 0 ]]; then
        echo "cfn-guard: failures (full report: ${report#"$ROOT/"}):"
        grep -E "Error +=|Message +=" "$report" | head -60
        return $status
    fi
    # A rule that SKIPs on the root template checks nothing there (its query matched no resource): fail.
    local skipped
    skipped=$(awk -v t="$TRANSLATED" '
        index($0, t " Status") { inside = 1; next }
        /^---/ { inside = 0 }
        inside && / SKIP$/ { print $1 }' "$report")
    if [[ -n "$skipped" ]]; then
        echo "cfn-guard: these rules matched nothing in the root template (a rule that cannot fail is a defect):"
        echo "$skipped"
        return 1
    fi
}

guard_unit_tests() {
    local status=0 rules name
    for rules in "$ROOT"/infra/guard/*.guard; do
        name="$(basename "$rules" .guard)"
        if [[ ! -f "$ROOT/infra/guard/tests/${name}_tests.yaml" ]]; then
            echo "cfn-guard test: $name has no tests/${name}_tests.yaml"
            status=1
            continue
        fi
        if "$VENV/bin/cfn-guard" test --rules-file "$rules" --test-data "$ROOT/infra/guard/tests/${name}_tests.yaml" \
            >"$OUT/guard-test-$name.txt" 2>&1; then
            echo "$name: $(grep -c '^Test Case' "$OUT/guard-test-$name.txt") cases ok"
        else
            grep -v "No Test expectation" "$OUT/guard-test-$name.txt"
            status=1
        fi
    done
    return $status
}

check_policies() {
    # Every policy document of the templates, in the default and the every-option scenario (scripts/check-policies.py).
    local templates=("$ROOT/infra/template.yaml" "$ROOT/infra/network.yaml")
    [[ -f "$ROOT/infra/identity-center-forwarder.yaml" ]] && templates+=("$ROOT/infra/identity-center-forwarder.yaml")
    "$VENV/bin/python" "$ROOT/scripts/check-policies.py" "${templates[@]}"
}

plan_case() { # plan_case NAME EXPECTED_EXIT PATTERN... -- VAR=VALUE... : one rehearsal and lines it must print
    local name="$1" expected="$2" output status pattern patterns=() missing=()
    shift 2
    while [[ "$1" != "--" ]]; do patterns+=("$1"); shift; done
    shift
    # Only what the case sets: none of the operator's ARCHITECTURE, PARAMS, ... nor the repository's samconfig.toml.
    output=$(env -u ARCHITECTURE -u PARAMS -u STACK_NAME -u LAMBDA_CONCURRENCY_QUOTA -u ACCOUNT_ID \
        SAMCONFIG="$OUT/no-samconfig.toml" "$@" "$VENV/bin/python" "$ROOT/scripts/deploy-plan.py" 2>&1)
    status=$?
    for pattern in "${patterns[@]}"; do
        grep -qE -- "$pattern" <<<"$output" || missing+=("$pattern")
    done
    if [[ $status -ne $expected || ${#missing[@]} -gt 0 ]]; then
        echo "deploy-plan $name: exit $status (expected $expected); missing: ${missing[*]:-nothing}"
        tail -25 <<<"$output" | sed 's/^/    /'
        return 1
    fi
    echo "deploy-plan $name: exit $status, prints: $(grep -m1 -oE -- "${patterns[-1]}" <<<"$output")"
}

deploy_plan_tests() {
    local status=0 store="IdentityStoreId=d-1234567890" unbuildable
    plan_case "defaults" 0 \
        "ProvisionUsersFunction +x86_64 +this machine can build it" \
        "AWS::Lambda::Function +ProvisionUsersFunction +studio-ops-provision-users" \
        "AWS::Events::EventBus +SuiteEventBus +studio-ops" \
        "AWS::SQS::Queue +FailedInvocationQueue +generated by CloudFormation" \
        "no function reserves concurrency" \
        "identity store +d-1234567890" \
        "StudioExecutionRole \\(name generated by CloudFormation\\), assumed by sagemaker.amazonaws.com" \
        "^PLAN OK" -- PARAMS="$store" ARCHITECTURE=x86_64 || status=1
    # samconfig.toml as sam deploy --guided writes it: its stack name and parameters are the plan's.
    printf '%s\n' 'version = 0.1' '[default.deploy.parameters]' 'stack_name = "studio-staging"' \
        'parameter_overrides = "Architecture=\"x86_64\" IdentityStoreId=\"d-1234567890\""' >"$OUT/samconfig-x86.toml"
    plan_case "samconfig.toml" 0 "AWS::Lambda::Function +NotifyFunction +studio-staging-notify" "^PLAN OK" \
        -- SAMCONFIG="$OUT/samconfig-x86.toml" || status=1
    plan_case "samconfig.toml says x86_64, ARCHITECTURE=arm64" 1 "^REFUSED" \
        "saves Architecture=x86_64 but ARCHITECTURE asks for arm64" -- SAMCONFIG="$OUT/samconfig-x86.toml" \
        ARCHITECTURE=arm64 || status=1
    # An architecture this machine cannot build (arm64 without the aarch64 Rust target) is refused.
    unbuildable=$(cd "$ROOT/scripts" && "$VENV/bin/python" -c 'import deploy_inputs as d; t = d.installed_rust_targets()
print(next((a for a in d.RUST_TARGETS if not d.can_build(a, t)), ""))')
    if [[ -n "$unbuildable" ]]; then
        plan_case "ARCHITECTURE=$unbuildable" 1 "^REFUSED" \
            "architecture: Architecture=$unbuildable \\(ARCHITECTURE\\) but this machine cannot build it" \
            -- PARAMS="$store" ARCHITECTURE="$unbuildable" || status=1
    else
        echo "deploy-plan: this machine builds every architecture - no refused-architecture case here"
    fi
    plan_case "IdentityStoreId empty" 1 "^REFUSED" "IdentityStoreId is required" -- PARAMS="IdentityStoreId=" || status=1
    plan_case "budgets" 0 "budgets +\\{\"mode\": \"dry-run\"" "^PLAN OK" \
        -- PARAMS="$store Budgets='{\"mode\": \"dry-run\", \"userMonthlyUsd\": 300}'" ARCHITECTURE=x86_64 || status=1
    plan_case "bad budgets" 1 "^REFUSED" "Budgets mode 'on' is not off, dry-run or enforce" \
        "Budgets userMonthlyUsd must be a number of USD above 0" \
        -- PARAMS="$store Budgets='{\"mode\": \"on\", \"userMonthlyUsd\": -5}'" ARCHITECTURE=x86_64 || status=1
    plan_case "a team shared space nobody may start, EMR roles that are not roles" 1 "^REFUSED" \
        "group 9a6763d7-0001-70f0-3861-d4cfe87e1540: shared space team-lab defaults to" \
        "EmrRuntimeRoleArns: 'emr-runtime' is not an IAM role ARN" \
        -- PARAMS="$store ProvisionGroupSettings='{\"9a6763d7-0001-70f0-3861-d4cfe87e1540\": {\"sharedSpaces\": [{\"name\": \"team-lab\", \"appType\": \"JupyterLab\", \"defaultInstanceType\": \"ml.p4d.24xlarge\"}]}}' EmrRuntimeRoleArns=emr-runtime" \
        ARCHITECTURE=x86_64 || status=1
    plan_case "ReserveConcurrency=true, quota 10" 1 "^REFUSED" \
        "reserving 6 executions needs an account quota of at least 106 \\(LAMBDA_CONCURRENCY_QUOTA=10\\)" \
        -- PARAMS="$store ReserveConcurrency=true" LAMBDA_CONCURRENCY_QUOTA=10 || status=1
    plan_case "unknown parameter, bad values" 1 "^REFUSED" "unknown parameter Bogus" \
        "IdleGraceMinutes=2 is below MinValue 5" "ReserveConcurrency='maybe' is not one of the AllowedValues" \
        -- PARAMS="$store Bogus=1 IdleGraceMinutes=2 ReserveConcurrency=maybe" || status=1
    return $status
}

total_start=$(date +%s.%N)
step "cfn-lint (template.yaml, network.yaml)" cfn_lint
step "sam validate --lint (template.yaml)" sam_validate
step "SAM transform (offline, aws-sam-translator)" sam_transform
if [[ -s "$TRANSLATED" ]]; then
    step "checkov (transformed template, network.yaml)" checkov_scan
    step "cfn-guard validate (infra/guard)" guard_validate
fi
step "cfn-guard rule unit tests (infra/guard/tests)" guard_unit_tests
step "parliament (every IAM policy)" check_policies
step "deploy-plan rehearsals (scripts/deploy-plan.py)" deploy_plan_tests
total_end=$(date +%s.%N)

echo
echo "check-infra summary ($("$VENV/bin/cfn-lint" --version), $(SAM_CLI_TELEMETRY=0 "$SAM_VENV/bin/sam" --version)," \
    "checkov $("$VENV/bin/checkov" --version), $("$VENV/bin/cfn-guard" --version)," \
    "parliament $("$VENV/bin/python" -c 'import parliament; print(parliament.__version__)'))"
for i in "${!NAMES[@]}"; do
    printf '  %-48s %-12s %5ss\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${SECONDS_TAKEN[$i]}"
done
printf '  %-48s %-12s %5ss\n' "total" "$([[ $failed -eq 0 ]] && echo ok || echo FAILED)" \
    "$(awk -v s="$total_start" -v e="$total_end" 'BEGIN { printf "%.1f", e - s }')"
exit $failed
