# studio-ops — the commands a newcomer runs. Everything the project needs is installed by these targets.
#   make demo   the main job: the team's day in the local AWS world, summary + target/demo/report.json
#   make test   fmt, clippy, offline infra checks, unit + integration tests (what CI runs)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
export STUDIO_OPS_VENV := $(CURDIR)/$(VENV)
# The local world only ever talks to loopback; keep real credentials and profiles out of every process.
export AWS_EC2_METADATA_DISABLED := true

# make deploy-plan / make deploy / make package (docs/deploy.md): one architecture for all three - empty means what
# this machine can build (arm64 only with the Rust target aarch64-unknown-linux-gnu); parameter overrides over
# samconfig.toml, e.g. PARAMS="IdentityStoreId=d-1234567890 StudioGroupId=..."; the stack name (default: samconfig's,
# else studio-ops); the account's Lambda concurrency quota, which reserved concurrency needs.
ARCHITECTURE ?=
PARAMS ?=
STACK_NAME ?=
LAMBDA_CONCURRENCY_QUOTA ?=
export ARCHITECTURE PARAMS STACK_NAME LAMBDA_CONCURRENCY_QUOTA

.PHONY: all venv iam-eval build demo world test lint unit infra-check bench package deploy-plan deploy

all: test

venv: $(VENV)/.installed

$(VENV)/.installed: tools/requirements.txt tools/requirements-infra.txt tools/requirements-sam.txt \
		tools/requirements-mlflow.txt scripts/install-infra-tools.sh
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	# The real MLflow tracking server of the local world, in its own venv: its pins must not move moto's.
	$(PYTHON) -m venv $(VENV)/mlflow
	$(VENV)/mlflow/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-mlflow.txt
	# The infra linters live in their own venvs (.venv/infra, .venv/sam): checkov pins a boto3 that moto must not
	# get, and the SAM CLI pins one that checkov's pin excludes.
	scripts/install-infra-tools.sh
	touch $@

# The offline IAM policy evaluator the IAM replay test spawns (tools/iam-eval/README.md), pinned by its lock file.
iam-eval: tools/iam-eval/node_modules/.installed

tools/iam-eval/node_modules/.installed: tools/iam-eval/package.json tools/iam-eval/package-lock.json
	cd tools/iam-eval && npm ci --no-audit --no-fund
	touch $@

build:
	cargo build --workspace --bins

demo: venv build
	./target/debug/studio-demo

world: venv build
	./target/debug/studio-world

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

infra-check: venv
	scripts/check-infra.sh

unit: venv iam-eval build
	scripts/run-tests.sh

test: lint infra-check unit

bench: venv
	scripts/bench.sh

package: venv
	scripts/package.sh

# What make deploy would create, and whether it can work - offline, before anything exists.
deploy-plan: venv
	$(VENV)/infra/bin/python scripts/deploy-plan.py

deploy: venv
	scripts/deploy.sh
