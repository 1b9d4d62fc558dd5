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

.PHONY: all venv build demo world test lint unit infra-check bench package deploy

all: test

venv: $(VENV)/.installed

$(VENV)/.installed: tools/requirements.txt $(wildcard tools/requirements-infra.txt)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	if [ -f tools/requirements-infra.txt ]; then $(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-infra.txt; fi
	if [ -x scripts/install-tools.sh ]; then scripts/install-tools.sh; fi
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
	if [ -x scripts/check-infra.sh ]; then scripts/check-infra.sh; else echo "no infra checks yet"; fi

unit: venv build
	scripts/run-tests.sh

test: lint infra-check unit

bench: venv
	if [ -x scripts/bench.sh ]; then scripts/bench.sh; else echo "no benchmark yet"; exit 1; fi

package: venv
	scripts/package.sh

deploy:
	scripts/deploy.sh
