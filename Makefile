# Set-up, checks and runs. On a fresh machine `make demo` and `make test` install what they need:
# the Python tools (requirements-dev.txt) go into .venv, the Rust toolchain is the machine's.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := $(CURDIR)/.venv
VENV_STAMP := .venv/.stamp

# Recipes that start moto_server or cargo-lambda see the venv's tools first; the test harness
# (tests/common) finds moto_server through MOTO_SERVER.
export PATH := $(VENV)/bin:$(PATH)
export MOTO_SERVER := $(VENV)/bin/moto_server
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# A clean `make test` writes ~1.9 GB of build output; incremental caches would add ~0.7 GB that a
# one-off run never uses (a CI machine ran out of disk). Set CARGO_INCREMENTAL=1 to keep them.
export CARGO_INCREMENTAL ?= 0

# CI must build exactly what Cargo.lock says; locally a changed Cargo.toml may update it.
CARGO_LOCKED := $(if $(CI),--locked,)

.PHONY: venv test lint cfn-lint fmt-check clippy cargo-test demo bench fuzz clean-venv

# The stamp is newer than requirements-dev.txt once the pinned tools are installed, so a second
# run does nothing. A failed install leaves no stamp and is retried next time.
$(VENV_STAMP): requirements-dev.txt
	@test -x .venv/bin/python || $(PYTHON) -m venv .venv
	.venv/bin/python -m pip install --quiet --requirement requirements-dev.txt
	@touch $@

venv: $(VENV_STAMP)

test: lint cargo-test

lint: cfn-lint fmt-check clippy

cfn-lint: $(VENV_STAMP)
	cfn-lint template.yaml

fmt-check:
	cargo fmt --all --check

clippy:
	cargo clippy $(CARGO_LOCKED) --all-targets -- -D warnings

# Library, binary and integration tests (the crate has no doctests, and a closing "0 passed" block
# would read as a run with no tests), then one closing line with the totals.
cargo-test: $(VENV_STAMP)
	@mkdir -p target
	cargo test $(CARGO_LOCKED) --lib --bins --tests 2>&1 | tee target/test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' target/test.log

demo: $(VENV_STAMP)
	bash scripts/demo.sh

bench: $(VENV_STAMP)
	bash scripts/bench.sh

# No nightly toolchain can be fetched here, so `cargo +nightly fuzz` is out; the script decides.
fuzz:
	bash scripts/fuzz.sh

clean-venv:
	rm -rf .venv
