#!/usr/bin/env python3
"""parliament over every IAM policy document of the templates, offline.

For each template (SAM templates after the transform of scripts/sam-translate.py) and each parameter
scenario - the defaults, every option switched on (SCENARIO_VALUES), and the same with Identity
Center administered in another account (ELSEWHERE) - every policy document is resolved
(scripts/cfn_eval.py) and audited by parliament's default auditors: roles' inline and trust
policies, AWS::IAM::RolePolicy/Policy/ManagedPolicy, and bucket, queue, topic, key and event-bus
policies. Two kinds are read the way AWS reads them: a trust policy has no Resource, its resource
is its role, so it is audited with the role's ARN; in a key policy `"Resource": "*"` is the only
resource there is (it means the key itself), so parliament's RESOURCE_STAR does not apply there.

Every finding fails the check unless the resource that holds the policy justifies it inline:

    Metadata:
      parliament:
        ignore:
          - finding: MISMATCHED_TYPE            # a parliament issue id
            action: kms:DescribeKey              # optional: only findings that name this text
            reason: why this is right here       # required

SAM passes a function's Metadata on to the roles it generates for the function's events.
An ignore without a reason, with an unknown finding id, or that matches no finding is an error
too: a justification must be honest and current. A condition that guards a policy but is false
in every scenario is an error as well (its statements would go unaudited): add a value for it.

usage: check-policies.py TEMPLATE...      exit 0: no unjustified finding
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import parliament
from parliament import analyze_policy_string

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cfn_eval  # noqa: E402  (the scripts directory is not a package)

# Concrete placeholders: parliament checks ARNs against the formats in its IAM database.
PSEUDO = cfn_eval.Pseudo(stack_name="studio-ops", region="us-east-1", account_id="123456789012")

# Values that switch on every optional part of the templates, so that each statement behind a
# condition is audited once; also the value of a required parameter in the defaults scenario.
# Parameters a template does not declare are left out.
SCENARIO_VALUES = {
    "IdentityStoreId": "d-1234567890",
    "StudioGroupId": "a1b2c3d4e5-12345678-1234-1234-1234-123456789012",
    "ProvisionExtraGroupIds": "11111111-1111-1111-1111-111111111111,22222222-2222-2222-2222-222222222222,"
                              "33333333-3333-3333-3333-333333333333,44444444-4444-4444-4444-444444444444",
    "ProvisionExecutionRoleArns": "arn:aws:iam::123456789012:role/studio-gpu-execution",
    "IdentityCenterKmsKeyArn": "arn:aws:kms:us-east-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "EmrSecurityGroupId": "sg-0123456789abcdef0",
    "ApproveOnMergeInto": "main",
    "EmrRuntimeRoleArns": "arn:aws:iam::123456789012:role/emr-runtime-churn",
    "EmrClusterAccountId": "210987654321",
    "EmrAccessRoleArn": "arn:aws:iam::210987654321:role/studio-emr-access",
    "NotificationEmail": "team@example.com",
    "ChatSlackWorkspaceId": "T0123ABCD",
    "ChatSlackChannelId": "C0123456789",
    "ChatTeamsTenantId": "11111111-2222-3333-4444-555555555555",
    "ChatTeamsTeamId": "66666666-7777-8888-9999-000000000000",
    "ChatTeamsChannelId": "19%3aabcdef0123456789%40thread.tacv2",
    "ReserveConcurrency": "true",
    "CreateRepository": "true",
    "CreateTrail": "true",
    "CreateInterfaceEndpoints": "true",
    "LogKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "SuiteEventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/studio-ops",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:210987654321:alarms",
}
# Identity Center in another account switches some parts on and others off: a scenario of its own.
ELSEWHERE = {"IdentityCenterAccountId": "210987654321"}

IGNORE_KEYS = {"finding", "action", "reason"}


@dataclass
class Finding:
    template: str
    holder: str
    kind: str
    issue: str
    detail: str

    def __str__(self) -> str:
        return f"{self.template}: {self.holder} ({self.kind}) {self.issue}: {self.detail}"

    def key(self) -> tuple:
        return (self.template, self.holder, self.kind, self.issue, self.detail)


def scenarios(template: dict) -> dict[str, dict[str, str]]:
    """The defaults (required parameters from SCENARIO_VALUES), every option on, and that with
    Identity Center elsewhere - each with only the parameters the template declares."""
    declared = template.get("Parameters", {})

    def declared_only(values: dict[str, str]) -> dict[str, str]:
        return {name: value for name, value in values.items() if name in declared}

    required = {name: SCENARIO_VALUES.get(name, "placeholder") for name, spec in declared.items()
                if "Default" not in spec}
    everything = {**required, **declared_only(SCENARIO_VALUES)}
    found = {"defaults": required, "every option": everything}
    if declared_only(ELSEWHERE):
        found["every option, Identity Center elsewhere"] = {**everything, **declared_only(ELSEWHERE)}
    return found


def audited_document(policy: cfn_eval.Policy, evaluator: cfn_eval.Evaluator) -> dict:
    """The document as AWS reads it: a trust policy's resource is its role."""
    if policy.kind != "trust policy":
        return policy.document
    role = evaluator.get_att(policy.holder, "Arn")
    return {**policy.document,
            "Statement": [{**statement, "Resource": role} for statement in cfn_eval.statements(policy.document)]}


def applies(issue: str, policy: cfn_eval.Policy) -> bool:
    """In a key policy "*" means the key: the only resource a key policy can name."""
    return not (issue == "RESOURCE_STAR" and policy.kind == "key policy")


def guarding_conditions(template: dict) -> set[str]:
    """Conditions that decide whether a policy or a policy statement exists."""
    holders = {"AWS::IAM::Role", "AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy",
               "AWS::Events::EventBusPolicy", *cfn_eval.RESOURCE_POLICIES}
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if "Fn::If" in node and isinstance(node["Fn::If"], list):
                found.add(node["Fn::If"][0])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for resource in template.get("Resources", {}).values():
        if resource.get("Type") in holders:
            if "Condition" in resource:
                found.add(resource["Condition"])
            walk(resource.get("Properties", {}))
    return found


def ignores_of(resource: dict, label: str, errors: list[str]) -> list[dict]:
    """The resource's Metadata.parliament.ignore entries, checked for shape and a reason."""
    entries = resource.get("Metadata", {}).get("parliament", {}).get("ignore", [])
    valid = []
    for entry in entries if isinstance(entries, list) else [entries]:
        if not isinstance(entry, dict) or set(entry) - IGNORE_KEYS:
            errors.append(f"{label}: parliament ignore {entry!r} - only keys {sorted(IGNORE_KEYS)} are allowed")
        elif not str(entry.get("reason", "")).strip():
            errors.append(f"{label}: parliament ignore of {entry.get('finding')} has no reason")
        elif entry.get("finding") not in parliament.config:
            errors.append(f"{label}: parliament ignore names {entry.get('finding')!r}, not a parliament finding")
        else:
            valid.append(entry)
    return valid


def matches(entry: dict, finding: Finding) -> bool:
    return entry["finding"] == finding.issue and str(entry.get("action", "")) in finding.detail


def audit(path: Path, findings: dict, justified: dict, used: set, errors: list[str]) -> int:
    """Audits one template in every scenario; returns how many policy documents were read."""
    sam_translate = cfn_eval.sam_translate()
    source = sam_translate.load_template(str(path))
    name = path.name
    documents = 0
    held_true: set[str] = set()
    for scenario, given in scenarios(source).items():
        try:
            template = sam_translate.translate(source, given)
        except sam_translate.InvalidDocumentException as error:
            errors.extend(f"{name} ({scenario}): {cause.message}" for cause in error.causes)
            return documents
        values, problems = cfn_eval.parameter_values(template, given, name)
        errors.extend(f"{name} ({scenario}): {problem}" for problem in problems)
        evaluator = cfn_eval.Evaluator(template, values, PSEUDO)
        try:
            held_true |= {condition for condition in template.get("Conditions", {}) if evaluator.condition(condition)}
            found = cfn_eval.policies(evaluator)
        except cfn_eval.EvaluationError as error:
            errors.append(f"{name} ({scenario}): cannot resolve the template offline: {error}")
            continue
        for policy in found:
            documents += 1
            holder = template["Resources"][policy.holder]
            entries = ignores_of(holder, f"{name} {policy.holder}", errors)
            audited = analyze_policy_string(json.dumps(audited_document(policy, evaluator)))
            for raw in audited.findings:
                if not applies(raw.issue, policy):
                    continue
                finding = Finding(name, policy.holder, policy.kind, raw.issue, json.dumps(raw.detail))
                reasons = [entry for entry in entries if matches(entry, finding)]
                for entry in reasons:
                    used.add((name, json.dumps(entry, sort_keys=True)))
                if reasons:
                    justified[finding.key()] = (finding, reasons[0]["reason"])
                else:
                    findings[finding.key()] = finding
    for condition in sorted(guarding_conditions(source) - held_true):
        errors.append(f"{name}: condition {condition} guards a policy but holds in no scenario - "
                      f"add a value that turns it on to SCENARIO_VALUES in {Path(__file__).name}")
    for logical_id, resource in source.get("Resources", {}).items():
        for entry in ignores_of(resource, f"{name} {logical_id}", []):
            if (name, json.dumps(entry, sort_keys=True)) not in used:
                errors.append(f"{name} {logical_id}: parliament ignore of {entry['finding']} matches no finding "
                              f"- remove it")
    return documents


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    findings: dict[tuple, Finding] = {}
    justified: dict[tuple, tuple[Finding, str]] = {}
    used: set = set()
    errors: list[str] = []
    documents = sum(audit(Path(path), findings, justified, used, errors) for path in paths)

    for finding, reason in justified.values():
        print(f"justified  {finding}\n           reason: {reason}")
    for finding in findings.values():
        print(f"FINDING    {finding}")
    for error in dict.fromkeys(errors):
        print(f"ERROR      {error}")
    print(f"parliament {parliament.__version__}: {len(paths)} templates, {documents} policy documents "
          f"(all scenarios), {len(findings)} findings, {len(justified)} justified, {len(set(errors))} errors")
    return 1 if findings or errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
