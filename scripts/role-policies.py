#!/usr/bin/env python3
"""Every IAM role of infra/template.yaml with the identity policies attached to it, resolved for one
deployment, as JSON - what the IAM replay test (tests/tests/iam.rs) evaluates requests against.

The template goes through the same SAM transform and offline CloudFormation evaluation as
`make deploy-plan` (scripts/cfn_eval.py). What only a real deployment knows - generated names and
attributes such as {DataBucket} or {StudioDomain.DomainId} - is replaced from --values, a JSON object
that maps each placeholder (without braces) to the value the local world uses. A placeholder left
unresolved in a role's policies is an error: the replay would compare requests with a name that
no request can carry.

usage: role-policies.py --values VALUES.json [--param NAME=VALUE ...] [--resource-policy HOLDER ...]
                        [--account ID] [--region R] [--stack NAME] [--template PATH]
output (stdout): {"roles": {"<RoleLogicalId>": [{"name": "<holder (kind)>", "document": {...}}]},
                 "resourcePolicies": {"<HolderLogicalId>": {...}}}
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))

import cfn_eval  # noqa: E402  (a sibling script)

# {Name} as cfn_eval writes what only a deployment knows; ${aws:...} is an IAM policy variable, not one of them.
PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z0-9:. -]+)\}")


def deploy_plan():
    """scripts/deploy-plan.py as a module (its Plan resolves the root and nested stacks)."""
    spec = importlib.util.spec_from_file_location("deploy_plan", SCRIPTS / "deploy-plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def substitute(value, values: dict[str, str], missing: set[str]):
    """`value` with every {placeholder} that `values` knows replaced; unknown ones are collected."""
    if isinstance(value, dict):
        return {key: substitute(item, values, missing) for key, item in value.items()}
    if isinstance(value, list):
        out = []
        for item in value:
            whole = PLACEHOLDER.fullmatch(item) if isinstance(item, str) else None
            if whole and "," in values.get(whole.group(1), ""):
                # A list output (Fn::Split of a comma-joined output such as subnet ids) is one placeholder here.
                out.extend(values[whole.group(1)].split(","))
            else:
                out.append(substitute(item, values, missing))
        return out
    if isinstance(value, str):
        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in values:
                return values[name]
            missing.add(name)
            return match.group(0)
        return PLACEHOLDER.sub(replace, value)
    return value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", type=Path, default=ROOT / "infra" / "template.yaml")
    parser.add_argument("--values", type=Path, required=True)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--resource-policy", action="append", default=[], metavar="HOLDER",
                        help="also print this resource's policy (e.g. WorkspaceKey, DataBucketPolicy)")
    parser.add_argument("--account", default="123456789012")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--stack", default="studio-ops")
    args = parser.parse_args(argv)

    values = json.loads(args.values.read_text(encoding="utf-8"))
    given = dict(item.split("=", 1) for item in args.param)
    pseudo = cfn_eval.Pseudo(args.stack, args.region, args.account)
    plan = deploy_plan().Plan(args.template, given, pseudo)
    if plan.problems:
        print("role-policies: the parameters cannot deploy:\n  " + "\n  ".join(plan.problems), file=sys.stderr)
        return 2
    roles: dict[str, list[dict]] = {}
    resource_policies: dict[str, dict] = {}
    missing: set[str] = set()
    for policy in cfn_eval.policies(plan.evaluator, plan.created):
        for role in policy.roles:
            document = substitute(policy.document, values, missing)
            roles.setdefault(role, []).append({"name": policy.label, "document": document})
        if policy.holder in args.resource_policy:
            # Resource policies (key, bucket, topic, queue, bus): IAM reads them beside the caller's policies.
            resource_policies[policy.holder] = substitute(policy.document, values, missing)
    if missing:
        print("role-policies: no value for " + ", ".join(sorted(missing)) + " (give them in --values)", file=sys.stderr)
        return 2
    json.dump({"roles": roles, "resourcePolicies": resource_policies}, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
