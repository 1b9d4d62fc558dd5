#!/usr/bin/env bash
# Every offline check of infra/: cfn-lint (0 errors), the SAM transform applied locally, checkov (0 failed;
# skips carry their reason in the template), cfn-guard with the project's rules in infra/guard (every rule
# must PASS on the root template, none may silently SKIP) and the rules' own unit tests.
# Exits non-zero when any check fails; prints a summary with timings. Needs no network:
# tools come from .venv/infra (scripts/install-infra-tools.sh).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${INFRA_VENV:-$ROOT/.venv/infra}"
OUT="$ROOT/target/infra"
TEMPLATES=("$ROOT/infra/template.yaml" "$ROOT/infra/network.yaml")
TRANSLATED="$OUT/template.json"

for tool in cfn-lint checkov cfn-guard python; do
    if [[ ! -x "$VENV/bin/$tool" ]]; then
        echo "check-infra: $VENV/bin/$tool is missing - run scripts/install-infra-tools.sh first" >&2
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

sam_transform() {
    "$VENV/bin/python" "$ROOT/scripts/sam-translate.py" "$ROOT/infra/template.yaml" "$TRANSLATED"
}

checkov_scan() {
    local args=(--framework cloudformation --skip-download --compact --quiet --output cli)
    "$VENV/bin/checkov" "${args[@]}" -f "$TRANSLATED" -f "$ROOT/infra/network.yaml"
}

guard_validate() {
    local report="$OUT/cfn-guard.txt" status
    "$VENV/bin/cfn-guard" validate --rules "$ROOT/infra/guard" --data "$TRANSLATED" --data "$ROOT/infra/network.yaml" \
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

total_start=$(date +%s.%N)
step "cfn-lint (template.yaml, network.yaml)" cfn_lint
step "SAM transform (offline, aws-sam-translator)" sam_transform
if [[ -s "$TRANSLATED" ]]; then
    step "checkov (transformed template, network.yaml)" checkov_scan
    step "cfn-guard validate (infra/guard)" guard_validate
fi
step "cfn-guard rule unit tests (infra/guard/tests)" guard_unit_tests
total_end=$(date +%s.%N)

echo
echo "check-infra summary ($("$VENV/bin/cfn-lint" --version), checkov $("$VENV/bin/checkov" --version), $("$VENV/bin/cfn-guard" --version))"
for i in "${!NAMES[@]}"; do
    printf '  %-48s %-12s %5ss\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${SECONDS_TAKEN[$i]}"
done
printf '  %-48s %-12s %5ss\n' "total" "$([[ $failed -eq 0 ]] && echo ok || echo FAILED)" \
    "$(awk -v s="$total_start" -v e="$total_end" 'BEGIN { printf "%.1f", e - s }')"
exit $failed
