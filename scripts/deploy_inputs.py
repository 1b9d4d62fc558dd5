#!/usr/bin/env python3
"""What the operator asked the deploy for, and the one architecture everything is built for.

`make package`, `make deploy-plan` and `make deploy` must build and deploy for the same CPU
architecture: the functions' `Architecture` parameter, `sam build`'s cargo lambda target and
`make package`'s `cargo lambda build --arm64/--x86-64`. This module is the one place that decides
it. The operator's choice comes first, from any of

  ARCHITECTURE=arm64|x86_64         (make variable or environment)
  PARAMS="Architecture=... ..."     (generic parameter overrides, make variable or environment)
  samconfig.toml                    (what `sam deploy --guided` saved: [default.deploy.parameters]
                                     parameter_overrides; SAMCONFIG=path reads another file)

and when none says, the machine's capability: arm64 only if the Rust target
aarch64-unknown-linux-gnu is installed (`rustup target list --installed`), x86_64 otherwise.
A choice this machine cannot build, or two sources that disagree, is refused with the reason
before anything is built or deployed.

Standard library only (Python 3.11+), so the shell scripts can run it with any python3:

  python3 scripts/deploy_inputs.py architecture   # prints arm64 or x86_64, or exits 1 with the reason
  python3 scripts/deploy_inputs.py stack-name     # STACK_NAME, else samconfig.toml's stack_name, else studio-ops

scripts/deploy-plan.py imports it for the parameters, the stack name and the architecture.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STACK_NAME = "studio-ops"

# Lambda architecture -> the Rust target cargo lambda builds it with.
RUST_TARGETS = {"arm64": "aarch64-unknown-linux-gnu", "x86_64": "x86_64-unknown-linux-gnu"}


class Refused(Exception):
    """The operator's inputs cannot work; the message says why and what to do."""


@dataclass
class Inputs:
    """Parameter values the operator gave, where each came from, and the stack they are for."""

    parameters: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    stack_name: str = DEFAULT_STACK_NAME
    region: str | None = None
    samconfig: Path | None = None  # the samconfig.toml that was read, if any


def parse_overrides(value, origin: str) -> dict[str, str]:
    """Parameter overrides as SAM accepts them: `Key=Value` pairs separated by spaces (values may be
    quoted), the CloudFormation form `ParameterKey=K,ParameterValue=V`, a list of either, or a table."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(key): _as_string(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: dict[str, str] = {}
        for item in value:
            merged.update(parse_overrides(item, origin))
        return merged
    if not isinstance(value, str):
        raise Refused(f"{origin}: parameter overrides must be text, a list or a table, not {value!r}")
    pairs: dict[str, str] = {}
    for token in shlex.split(value):
        long_form = re.fullmatch(r"ParameterKey=([^,]+),ParameterValue=(.*)", token)
        if long_form:
            pairs[long_form.group(1)] = long_form.group(2)
        elif "=" in token and token.split("=", 1)[0]:
            key, item = token.split("=", 1)
            pairs[key] = item
        else:
            raise Refused(f"{origin}: {token!r} is not Key=Value")
    return pairs


def _as_string(value) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def samconfig_path() -> Path:
    return Path(os.environ.get("SAMCONFIG") or ROOT / "samconfig.toml")


def read_samconfig(path: Path) -> tuple[dict[str, str], dict]:
    """The parameter overrides and the other deploy settings `sam deploy --guided` saved.
    [default.global.parameters] applies to every command; [default.deploy.parameters] wins."""
    try:
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise Refused(f"{path}: not valid TOML ({error})") from error
    environment = config.get("default", {})
    settings = {**environment.get("global", {}).get("parameters", {}),
                **environment.get("deploy", {}).get("parameters", {})}
    overrides = parse_overrides(settings.get("parameter_overrides"), f"{path} parameter_overrides")
    return overrides, settings


def read_inputs(environ=os.environ) -> Inputs:
    """Everything the operator gave: samconfig.toml, then PARAMS over it, then ARCHITECTURE and
    STACK_NAME. Refuses two explicit architectures that disagree, or one that disagrees with samconfig."""
    inputs = Inputs()
    path = samconfig_path()
    saved: dict[str, str] = {}
    if path.is_file():
        saved, settings = read_samconfig(path)
        inputs.samconfig = path
        inputs.stack_name = settings.get("stack_name") or inputs.stack_name
        inputs.region = settings.get("region")
        inputs.parameters.update(saved)
        inputs.sources.update({key: path.name for key in saved})

    params = parse_overrides(environ.get("PARAMS", ""), "PARAMS")
    inputs.parameters.update(params)
    inputs.sources.update({key: "PARAMS" for key in params})

    asked = environ.get("ARCHITECTURE", "").strip()
    if asked:
        if "Architecture" in params and params["Architecture"] != asked:
            raise Refused(f"ARCHITECTURE={asked} but PARAMS says Architecture={params['Architecture']}: give one")
        inputs.parameters["Architecture"] = asked
        inputs.sources["Architecture"] = "ARCHITECTURE"
    chosen = inputs.parameters.get("Architecture")
    if "Architecture" in saved and chosen != saved["Architecture"]:
        raise Refused(
            f"{path.name} saves Architecture={saved['Architecture']} but {inputs.sources['Architecture']} asks for "
            f"{chosen}: the stack and its code would disagree. Change one of them (or SAMCONFIG=... another file).")

    if environ.get("STACK_NAME", "").strip():
        inputs.stack_name = environ["STACK_NAME"].strip()
    inputs.region = inputs.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None
    return inputs


def installed_rust_targets() -> set[str]:
    """The Rust targets this machine can compile for: rustup's installed targets, or rustc's host."""
    try:
        listed = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True,
                                check=True).stdout
        return set(listed.split())
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        version = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {line.split(":", 1)[1].strip() for line in version.splitlines() if line.startswith("host:")}


def can_build(architecture: str, targets: set[str] | None = None) -> bool:
    targets = installed_rust_targets() if targets is None else targets
    return RUST_TARGETS.get(architecture) in targets


def machine_default(targets: set[str]) -> str:
    return "arm64" if RUST_TARGETS["arm64"] in targets else "x86_64"


def resolve_architecture(inputs: Inputs, targets: set[str] | None = None) -> str:
    """The architecture to build and deploy: the operator's (checked against this machine), or the
    machine's default. Also records it in `inputs`, so the plan and the deploy pass it on."""
    targets = installed_rust_targets() if targets is None else targets
    chosen = inputs.parameters.get("Architecture")
    if chosen is None:
        chosen = machine_default(targets)
        inputs.parameters["Architecture"] = chosen
        inputs.sources["Architecture"] = "this machine (no ARCHITECTURE given)"
    if chosen not in RUST_TARGETS:
        raise Refused(f"Architecture={chosen} ({inputs.sources['Architecture']}): Lambda runs arm64 or x86_64")
    if RUST_TARGETS[chosen] not in targets:
        raise Refused(
            f"Architecture={chosen} ({inputs.sources['Architecture']}) but this machine cannot build it: the Rust "
            f"target {RUST_TARGETS[chosen]} is not installed (rustup target add {RUST_TARGETS[chosen]}), "
            f"or choose ARCHITECTURE={machine_default(targets)}")
    return chosen


def main(argv: list[str]) -> int:
    if argv not in (["architecture"], ["stack-name"]):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        inputs = read_inputs()
        print(resolve_architecture(inputs) if argv == ["architecture"] else inputs.stack_name)
    except Refused as refusal:
        print(f"refused: {refusal}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
