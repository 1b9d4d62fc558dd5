#!/usr/bin/env python3
"""Applies the AWS SAM transform to a template offline and writes plain CloudFormation JSON.

checkov and cfn-guard read CloudFormation, not SAM: the functions, their rules, schedules and
permissions only exist after the transform. aws-sam-translator runs the same transform
CloudFormation runs, locally; the one part that would call AWS (looking up the ARNs of managed
policies named in `Policies`) is answered from an empty map, because this project names none.

scripts/deploy-plan.py and scripts/check-policies.py import this file (`translate`) rather than
repeating the transform.

usage: sam-translate.py TEMPLATE OUT.json
"""

import copy
import json
import logging
import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The translator records metrics for a publisher that is not there offline, then warns they went unpublished.
logging.getLogger("samtranslator.metrics").setLevel(logging.ERROR)


def point_code_at_placeholders(template: dict) -> None:
    """`sam build`/`sam package` replace a local CodeUri with the S3 object they upload; the
    translator insists on that form, so a local path becomes a placeholder object here."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.setdefault("Properties", {})
        code_uri = properties.get("CodeUri")
        if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            properties["CodeUri"] = f"s3://local-build-placeholder/{logical_id}.zip"


class NoManagedPolicies:
    """Stands in for the IAM lookup of managed policy ARNs: the template names no managed policy."""

    def load(self):
        return {}


def load_template(path: str) -> dict:
    """Reads a SAM or CloudFormation template (YAML with short-form intrinsics, or JSON)."""
    with open(path, encoding="utf-8") as handle:
        return yaml_parse(handle.read())


def translate(template: dict, parameter_values: dict | None = None) -> dict:
    """The template as CloudFormation sees it after the SAM transform, for these parameter values
    (the transform resolves a few of them itself, as CloudFormation's does). A template without the
    SAM transform is returned as it is. Raises InvalidDocumentException."""
    if "AWS::Serverless-2016-10-31" not in _transforms(template):
        return copy.deepcopy(template)
    # The transform resolves AWS::Region from a boto3 session; only a name is needed, no call.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = copy.deepcopy(template)  # the transform works in place
    point_code_at_placeholders(template)
    return transform(template, dict(parameter_values or {}), NoManagedPolicies(), passthrough_metadata=True)


def _transforms(template: dict) -> list:
    declared = template.get("Transform", [])
    return declared if isinstance(declared, list) else [declared]


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = sys.argv[1], sys.argv[2]
    try:
        translated = translate(load_template(source))
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(f"{source}: {cause.message}", file=sys.stderr)
        return 1
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(translated, handle, indent=2, sort_keys=False)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
