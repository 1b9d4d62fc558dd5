"""CloudFormation evaluated offline, for one set of parameter values.

scripts/deploy-plan.py and scripts/check-policies.py both need what a template becomes once
CloudFormation has its parameters: which resources the Conditions keep, what each Ref, Fn::Sub,
Fn::GetAtt, Fn::If, Fn::Join ... turns into, what each named resource will be called, and every
IAM policy document with its statements resolved. This module answers that from the template
alone, with no AWS call. What only AWS knows is a readable placeholder in braces:

  {AWS::AccountId} {AWS::Region}    unless given (the plan takes the region from samconfig.toml)
  {DataBucket}                      a name CloudFormation generates (no name property given)
  {StudioDomain.DomainId}           an attribute only known once the resource exists

The SAM transform itself is scripts/sam-translate.py (aws-sam-translator); `sam_translate()` imports
that file, so both tools see exactly what check-infra's transform step produces.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent


@cache
def sam_translate():
    """scripts/sam-translate.py as a module (its name has a dash, so it is loaded by path)."""
    spec = importlib.util.spec_from_file_location("sam_translate", SCRIPTS / "sam-translate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# Parameters


def default_text(spec: dict) -> str | None:
    """A parameter's Default as the text CloudFormation would pass (None: it has none)."""
    if "Default" not in spec:
        return None
    default = spec["Default"]
    if isinstance(default, list):
        return ",".join(str(item) for item in default)
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)


def is_list_type(spec: dict) -> bool:
    kind = str(spec.get("Type", "String"))
    return kind == "CommaDelimitedList" or kind.startswith("List<")


def check_parameter(name: str, spec: dict, value: str) -> list[str]:
    """What is wrong with `value` for parameter `name` (AllowedValues, AllowedPattern, lengths,
    Number, MinValue/MaxValue) - empty when it is acceptable. List types are checked per item."""
    problems = []
    explain = f" ({spec['ConstraintDescription']})" if spec.get("ConstraintDescription") else ""
    items = [item.strip() for item in value.split(",")] if is_list_type(spec) and value else [value]
    for item in items:
        allowed = spec.get("AllowedValues")
        if allowed is not None and item not in [default_text({"Default": a}) for a in allowed]:
            problems.append(f"{name}={item!r} is not one of the AllowedValues {', '.join(map(str, allowed))}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and re.fullmatch(pattern, item) is None:
            problems.append(f"{name}={item!r} does not match the AllowedPattern {pattern}{explain}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        problems.append(f"{name} is shorter than MinLength {spec['MinLength']}{explain}")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        problems.append(f"{name} is longer than MaxLength {spec['MaxLength']}{explain}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return problems + [f"{name}={value!r} is not a number"]
        if "MinValue" in spec and number < float(spec["MinValue"]):
            problems.append(f"{name}={value} is below MinValue {spec['MinValue']}{explain}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            problems.append(f"{name}={value} is above MaxValue {spec['MaxValue']}{explain}")
    return problems


def parameter_values(template: dict, given: dict[str, str], source: str = "the template"
                     ) -> tuple[dict[str, str], list[str]]:
    """The value of every parameter (given, else its Default, else empty) and the reasons
    CloudFormation would reject the set: an unknown parameter, a required one missing or empty, a
    value out of bounds. A value holding a placeholder (only known once deployed) is not checked."""
    declared = template.get("Parameters", {})
    problems = [f"unknown parameter {name}: {source} declares no such parameter"
                for name in given if name not in declared]
    values = {}
    for name, spec in declared.items():
        value = given.get(name, default_text(spec))
        values[name] = value or ""
        if value is None:
            problems.append(f"{name} is required: it has no default and no value was given")
        elif value == "" and "Default" not in spec:
            problems.append(f"{name} is required: it has no default, and the value given is empty")
        elif not has_placeholder(value):
            problems.extend(check_parameter(name, spec, value))
    return values, problems


PLACEHOLDER = re.compile(r"\{[A-Za-z0-9:. -]+\}")


def has_placeholder(value) -> bool:
    """Whether a resolved value holds something only known once deployed, such as {DataBucket}."""
    return bool(PLACEHOLDER.search(json.dumps(value)))


# ---------------------------------------------------------------------------------------------
# Names and ARNs of resources


@dataclass(frozen=True)
class Kind:
    """How one resource type is named and what Ref and Fn::GetAtt return. Formats use {name} (the
    physical name), {id} (an id only AWS knows), {partition}, {region}, {account}."""

    name_property: str | None
    ref: str = "{name}"
    attributes: dict[str, str] = field(default_factory=dict)


KINDS: dict[str, Kind] = {
    "AWS::Lambda::Function": Kind("FunctionName", attributes={
        "Arn": "arn:{partition}:lambda:{region}:{account}:function:{name}"}),
    "AWS::Lambda::Alias": Kind("Name"),
    "AWS::Events::EventBus": Kind("Name", attributes={
        "Arn": "arn:{partition}:events:{region}:{account}:event-bus/{name}", "Name": "{name}"}),
    "AWS::Events::Rule": Kind("Name", attributes={"Arn": "arn:{partition}:events:{region}:{account}:rule/{bus}{name}"}),
    "AWS::Scheduler::Schedule": Kind("Name", attributes={
        "Arn": "arn:{partition}:scheduler:{region}:{account}:schedule/{group}/{name}"}),
    "AWS::Scheduler::ScheduleGroup": Kind("Name", attributes={
        "Arn": "arn:{partition}:scheduler:{region}:{account}:schedule-group/{name}"}),
    "AWS::Logs::LogGroup": Kind("LogGroupName", attributes={
        "Arn": "arn:{partition}:logs:{region}:{account}:log-group:{name}:*"}),
    "AWS::CloudWatch::Alarm": Kind("AlarmName", attributes={
        "Arn": "arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}"}),
    "AWS::CloudTrail::Trail": Kind("TrailName", attributes={
        "Arn": "arn:{partition}:cloudtrail:{region}:{account}:trail/{name}"}),
    "AWS::CodeCommit::Repository": Kind("RepositoryName", ref="{id}", attributes={
        "Arn": "arn:{partition}:codecommit:{region}:{account}:{name}", "Name": "{name}",
        "CloneUrlHttp": "https://git-codecommit.{region}.amazonaws.com/v1/repos/{name}"}),
    "AWS::SageMaker::Domain": Kind("DomainName", ref="{id}", attributes={
        "DomainId": "{id}", "DomainArn": "arn:{partition}:sagemaker:{region}:{account}:domain/{id}"}),
    "AWS::KMS::Key": Kind(None, ref="{id}", attributes={
        "Arn": "arn:{partition}:kms:{region}:{account}:key/{id}", "KeyId": "{id}"}),
    "AWS::KMS::Alias": Kind("AliasName"),
    "AWS::S3::Bucket": Kind("BucketName", attributes={"Arn": "arn:{partition}:s3:::{name}"}),
    "AWS::SQS::Queue": Kind("QueueName", ref="https://sqs.{region}.amazonaws.com/{account}/{name}", attributes={
        "Arn": "arn:{partition}:sqs:{region}:{account}:{name}", "QueueName": "{name}",
        "QueueUrl": "https://sqs.{region}.amazonaws.com/{account}/{name}"}),
    "AWS::SNS::Topic": Kind("TopicName", ref="arn:{partition}:sns:{region}:{account}:{name}", attributes={
        "TopicArn": "arn:{partition}:sns:{region}:{account}:{name}", "TopicName": "{name}"}),
    "AWS::DynamoDB::Table": Kind("TableName", attributes={
        "Arn": "arn:{partition}:dynamodb:{region}:{account}:table/{name}"}),
    "AWS::IAM::Role": Kind("RoleName", attributes={"Arn": "arn:{partition}:iam::{account}:role/{name}"}),
    "AWS::IAM::ManagedPolicy": Kind("ManagedPolicyName", ref="arn:{partition}:iam::{account}:policy/{name}",
                                    attributes={"PolicyArn": "arn:{partition}:iam::{account}:policy/{name}"}),
    "AWS::CloudFormation::Stack": Kind(None, ref="arn:{partition}:cloudformation:{region}:{account}:stack/{id}"),
}


# ---------------------------------------------------------------------------------------------
# Evaluation


class NoValue:
    """AWS::NoValue: the property or list item disappears."""

    def __repr__(self):
        return "AWS::NoValue"


NO_VALUE = NoValue()


class EvaluationError(Exception):
    pass


@dataclass
class Pseudo:
    """The pseudo parameters. Unknown account and region stay placeholders."""

    stack_name: str = "studio-ops"
    region: str | None = None
    account_id: str | None = None

    @property
    def partition(self) -> str:
        region = self.region or ""
        return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"

    def values(self) -> dict[str, str]:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region or "{AWS::Region}",
            "AWS::AccountId": self.account_id or "{AWS::AccountId}",
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region or '{AWS::Region}'}:"
                            f"{self.account_id or '{AWS::AccountId}'}:stack/{self.stack_name}/{{id}}",
            "AWS::NotificationARNs": [],
        }


class Evaluator:
    """One template with one set of parameter values: conditions, intrinsic functions, names."""

    def __init__(self, template: dict, parameters: dict[str, str], pseudo: Pseudo | None = None):
        self.template = template
        self.pseudo = pseudo or Pseudo()
        self.parameters = parameters
        self.resources = template.get("Resources", {})
        self._conditions: dict[str, bool] = {}
        self._names: dict[str, str] = {}

    # -- conditions

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definitions = self.template.get("Conditions", {})
            if name not in definitions:
                raise EvaluationError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(definitions[name]))
        return self._conditions[name]

    def includes(self, logical_id: str) -> bool:
        """Whether the resource is created (its Condition, if any, holds)."""
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def created(self) -> dict[str, dict]:
        """Every resource that is created, with its properties resolved."""
        return {logical_id: {**resource, "Properties": self.resolve(resource.get("Properties", {}))}
                for logical_id, resource in self.resources.items() if self.includes(logical_id)}

    # -- names

    def physical_name(self, logical_id: str) -> str | None:
        """The name the template fixes for a resource, or None when CloudFormation generates it."""
        resource = self.resources[logical_id]
        kind = KINDS.get(resource.get("Type"))
        if kind is None or kind.name_property is None:
            return None
        value = resource.get("Properties", {}).get(kind.name_property)
        if value is None:
            return None
        value = self.resolve(value)
        return None if value is NO_VALUE else str(value)

    def name(self, logical_id: str) -> str:
        """The physical name, or a placeholder for a generated one."""
        if logical_id not in self._names:
            self._names[logical_id] = self.physical_name(logical_id) or "{" + logical_id + "}"
        return self._names[logical_id]

    def _format(self, logical_id: str, pattern: str) -> str:
        resource = self.resources[logical_id]
        properties = resource.get("Properties", {})
        fields = {"partition": self.pseudo.partition,
                  "region": self.pseudo.values()["AWS::Region"],
                  "account": self.pseudo.values()["AWS::AccountId"],
                  "id": "{" + logical_id + "}"}
        if "{name}" in pattern:
            fields["name"] = self.name(logical_id)
        if "{bus}" in pattern:  # a rule on a custom bus: rule/<bus>/<name>
            bus = self.resolve(properties.get("EventBusName", "default"))
            bus = str(bus).rsplit("/", 1)[-1] if bus is not NO_VALUE else "default"
            fields["bus"] = "" if bus == "default" else bus + "/"
        if "{group}" in pattern:
            group = self.resolve(properties.get("GroupName", "default"))
            fields["group"] = "default" if group is NO_VALUE else str(group)
        return pattern.format(**fields)

    # -- intrinsic functions

    def ref(self, name: str):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name.startswith("AWS::"):
            values = self.pseudo.values()
            if name not in values:
                raise EvaluationError(f"unknown pseudo parameter {name}")
            return values[name]
        if name in self.parameters:
            spec = self.template.get("Parameters", {}).get(name, {})
            value = self.parameters[name]
            if is_list_type(spec):
                return [item for item in value.split(",")] if value else []
            return value
        if name in self.resources:
            kind = KINDS.get(self.resources[name].get("Type"))
            return self._format(name, kind.ref if kind else "{id}")
        raise EvaluationError(f"Ref to {name}: no such parameter or resource")

    def get_att(self, logical_id: str, attribute: str):
        if logical_id not in self.resources:
            raise EvaluationError(f"Fn::GetAtt {logical_id}.{attribute}: no such resource")
        kind = KINDS.get(self.resources[logical_id].get("Type"))
        if kind and attribute in kind.attributes:
            return self._format(logical_id, kind.attributes[attribute])
        return "{" + f"{logical_id}.{attribute}" + "}"

    def sub(self, text: str, variables: dict) -> str:
        def replace(match: re.Match) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                value = variables[expression]
            elif "." in expression and not expression.startswith("AWS::"):
                value = self.get_att(*expression.split(".", 1))
            else:
                value = self.ref(expression)
            if isinstance(value, list):
                raise EvaluationError(f"Fn::Sub ${{{expression}}} is a list")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node):
        """The value of a template fragment: intrinsics evaluated, AWS::NoValue removed."""
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, argument), = node.items()
            function = self.FUNCTIONS.get(key)
            if function is not None:
                return function(self, argument)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _fn_if(self, argument):
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_sub(self, argument):
        if isinstance(argument, str):
            return self.sub(argument, {})
        text, variables = argument
        return self.sub(text, {key: self.resolve(value) for key, value in variables.items()})

    def _fn_get_att(self, argument):
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        logical_id, attribute = argument
        return self.get_att(logical_id, self.resolve(attribute))

    def _fn_join(self, argument):
        delimiter, items = argument
        items = self.resolve(items)
        return delimiter.join(str(item) for item in items)

    def _fn_split(self, argument):
        delimiter, text = argument
        return str(self.resolve(text)).split(delimiter)

    def _fn_select(self, argument):
        index, items = argument
        items, index = self.resolve(items), int(self.resolve(index))
        if not 0 <= index < len(items):
            raise EvaluationError(f"Fn::Select {index} of a list of {len(items)}")
        return items[index]

    def _fn_find_in_map(self, argument):
        name, first, second = (self.resolve(part) for part in argument[:3])
        return self.template["Mappings"][name][first][second]

    def _fn_get_azs(self, argument):
        region = self.resolve(argument) or self.pseudo.values()["AWS::Region"]
        return [f"{region}a", f"{region}b", f"{region}c"]

    FUNCTIONS = {
        "Ref": lambda self, name: self.ref(name),
        "Condition": lambda self, name: self.condition(name),
        "Fn::If": _fn_if,
        "Fn::Equals": lambda self, pair: str(self.resolve(pair[0])) == str(self.resolve(pair[1])),
        "Fn::Not": lambda self, items: not self.resolve(items[0]),
        "Fn::And": lambda self, items: all(self.resolve(item) for item in items),
        "Fn::Or": lambda self, items: any(self.resolve(item) for item in items),
        "Fn::Sub": _fn_sub,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Join": _fn_join,
        "Fn::Split": _fn_split,
        "Fn::Select": _fn_select,
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::GetAZs": _fn_get_azs,
        "Fn::ImportValue": lambda self, name: "{ImportValue " + str(self.resolve(name)) + "}",
        "Fn::Base64": lambda self, text: self.resolve(text),
        "Fn::Cidr": lambda self, argument: [f"{{Cidr {index + 1}}}" for index in range(int(self.resolve(argument[1])))],
    }


# ---------------------------------------------------------------------------------------------
# Policy documents


@dataclass
class Policy:
    """One IAM policy document of a template, resolved."""

    holder: str        # logical id of the resource that declares it
    kind: str          # "inline policy NAME", "managed policy", "trust policy", "bucket policy", ...
    document: dict
    roles: list[str] = field(default_factory=list)  # the roles an identity policy is attached to

    @property
    def label(self) -> str:
        return f"{self.holder} ({self.kind})"


# Resource-based policies: resource type -> the property that holds the document.
RESOURCE_POLICIES = {
    "AWS::S3::BucketPolicy": ("bucket policy", "PolicyDocument"),
    "AWS::SQS::QueuePolicy": ("queue policy", "PolicyDocument"),
    "AWS::SNS::TopicPolicy": ("topic policy", "PolicyDocument"),
    "AWS::KMS::Key": ("key policy", "KeyPolicy"),
    "AWS::Events::EventBus": ("event bus policy", "Policy"),
    "AWS::Logs::ResourcePolicy": ("log resource policy", "PolicyDocument"),
    "AWS::SecretsManager::ResourcePolicy": ("secret policy", "ResourcePolicy"),
    "AWS::ECR::Repository": ("repository policy", "RepositoryPolicyText"),
}


def _document(value) -> dict:
    return json.loads(value) if isinstance(value, str) else value


def policies(evaluator: Evaluator, created: dict[str, dict] | None = None) -> list[Policy]:
    """Every policy document of the created resources: roles' inline and trust policies, managed
    and inline policy resources (with the roles they attach to), and resource policies."""
    created = evaluator.created() if created is None else created
    found: list[Policy] = []
    role_by_name = {evaluator.name(logical_id): logical_id for logical_id, resource in created.items()
                    if resource["Type"] == "AWS::IAM::Role"}

    def roles_named(names) -> list[str]:
        names = names if isinstance(names, list) else [names]
        return [role_by_name.get(str(name), str(name)) for name in names]

    for logical_id, resource in created.items():
        kind, properties = resource["Type"], resource["Properties"]
        if kind == "AWS::IAM::Role":
            found.append(Policy(logical_id, "trust policy", properties.get("AssumeRolePolicyDocument", {})))
            for inline in properties.get("Policies", []):
                found.append(Policy(logical_id, f"inline policy {inline.get('PolicyName')}",
                                    _document(inline["PolicyDocument"]), [logical_id]))
        elif kind in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy"):
            attached = roles_named(properties["RoleName"]) if "RoleName" in properties else \
                roles_named(properties.get("Roles", []))
            found.append(Policy(logical_id, f"inline policy {properties.get('PolicyName')}",
                                _document(properties["PolicyDocument"]), attached))
        elif kind == "AWS::IAM::ManagedPolicy":
            arn = evaluator.ref(logical_id)
            attached = roles_named(properties.get("Roles", []))
            attached += [role for role, other in created.items() if other["Type"] == "AWS::IAM::Role"
                         and arn in other["Properties"].get("ManagedPolicyArns", []) and role not in attached]
            found.append(Policy(logical_id, "managed policy", _document(properties["PolicyDocument"]), attached))
        elif kind == "AWS::Events::EventBusPolicy":
            # StatementId becomes the statement's Sid in EventBridge's own format, not IAM's: left out.
            document = properties.get("Policy") or {"Version": "2012-10-17", "Statement": [properties["Statement"]]}
            found.append(Policy(logical_id, "event bus policy", _document(document)))
        elif kind in RESOURCE_POLICIES:
            label, name = RESOURCE_POLICIES[kind]
            if name in properties:
                found.append(Policy(logical_id, label, _document(properties[name])))
    return found


def statements(document: dict) -> list[dict]:
    listed = document.get("Statement", [])
    return listed if isinstance(listed, list) else [listed]


def as_list(value) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]
