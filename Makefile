# greguard — the two commands of the README: `make demo` and `make test`.
# Both install missing Debian packages first (apt-get; the machine is root or has sudo). Rust is
# not a Debian package here (Debian 12's rustc is 1.63): install Rust stable 1.82 or newer with
# rustup first, as the user who runs make.

SHELL := /bin/bash
CARGO ?= cargo

# What building needs: xsk-rs / libxdp-sys (clang, llvm, libclang-dev, libelf-dev, zlib1g-dev,
# m4, pkg-config, libpcap-dev) and the XDP programs' headers (libbpf-dev).
BUILD_PACKAGES := clang llvm libclang-dev libelf-dev zlib1g-dev m4 pkg-config libpcap-dev \
                  libbpf-dev
# What the lab, the tests and the benchmarks drive: ip (namespaces, veths), ethtool (checksum
# offload off on the end hosts), ping, setpriv/taskset (util-linux), tcpdump (opens our pcaps),
# promtool (package prometheus: checks the names and help texts of /metrics), systemd-analyze
# and systemd-nspawn (the unit's tests), nft (the nftables differential test), curl (scrapes).
RUN_PACKAGES := tcpdump iproute2 ethtool iputils-ping util-linux prometheus systemd \
                systemd-container nftables curl

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The tests that need root are one test binary behind this feature (appliance/tests/root/);
# build and lint include it, so `make test` compiles once.
ROOT_TESTS := --features appliance/root-tests

# Runs a command as root: directly when make runs as root, else through sudo with the caller's
# PATH and Rust toolchain (sudo resets PATH, and rustup's cargo finds its toolchains through
# RUSTUP_HOME and CARGO_HOME, which default to the caller's home). GG_SEED, when set, reaches
# the tests that draw random policies.
AS_ROOT := $(if $(SUDO),$(SUDO) env PATH="$$PATH" CARGO_HOME="$${CARGO_HOME:-$$HOME/.cargo}" \
             RUSTUP_HOME="$${RUSTUP_HOME:-$$HOME/.rustup}" $(if $(GG_SEED),GG_SEED=$(GG_SEED)),)

# Installs the Debian packages of $(1) that are missing; does nothing (and needs no root) when
# every one is installed.
define install_missing
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -q --no-install-recommends $$missing \
	    || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends $$missing; }; \
	fi
endef

.PHONY: all deps build-deps rust build test lint unit demo replay-demo bench bench-storm bench-e2e bench-scale soak install clean

all: build

## deps: install the Debian packages that are missing, to build and to run the lab, tests and
## benchmarks (nothing to do when all are there)
deps:
	$(call install_missing,$(BUILD_PACKAGES) $(RUN_PACKAGES))

## build-deps: only what building needs
build-deps:
	$(call install_missing,$(BUILD_PACKAGES))

## rust: fail early, and say what to do, when there is no Rust toolchain
rust:
	@command -v $(CARGO) > /dev/null || { echo "$(CARGO) not found: install Rust stable 1.82 or newer with rustup, then open a new shell (Debian 12's own rustc is too old)"; exit 1; }

## build: release build of every crate
build: deps rust
	$(CARGO) build --release --workspace --all-targets $(ROOT_TESTS)

## lint: formatting and clippy, warnings are errors
lint: rust
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets $(ROOT_TESTS) -- -D warnings

## test: install, build, lint and run every test, the root ones included. Everything is built
## as you; the tests run as root (sudo when you are not), since the data-path tests need
## network namespaces and AF_XDP, one at a time (they measure what crosses the box and must not
## share the two cores)
test: deps build lint
	$(CARGO) test --release --workspace $(ROOT_TESTS) --no-run
	$(AS_ROOT) RUST_TEST_THREADS=1 $(CARGO) test --release --workspace $(ROOT_TESTS)

## demo: the built-in lab: namespaces + veths, `greguard run` with AF_XDP, 20 s of traffic (root)
demo: build
	$(SUDO) target/release/greguard-gen lab $(LAB_ARGS)

## replay-demo: the classifier over the captures shipped in captures/ (no interfaces; no root
## once the build packages are installed, else it installs them first with sudo apt-get)
replay-demo: build-deps rust
	$(CARGO) build --release -p appliance --bin greguard
	target/release/greguard check -c config/examples/small-site.toml
	target/release/greguard replay -c config/examples/small-site.toml captures/backscatter-mix.pcap

## bench: the classifier micro-benchmark (criterion) over the standard mix (benches/src/lib.rs)
bench: deps rust
	$(CARGO) bench -p benches --bench classifier

## bench-storm: valid tunnel GRE under a storm, fast lane on/off, and non-GRE pass-through
## against a bare XDP redirect (needs root; measures, never asserts)
bench-storm: build
	$(SUDO) benches/storm.sh $(STORM_ARGS)

## bench-scale: 10 / 10 000 / 100 000 tunnels: forwarding on the lab mix, check time,
## reload under traffic, resident memory (root)
bench-scale: build
	$(SUDO) benches/scale $(SCALE_ARGS)

## soak: SOAK_SECONDS (600) of the lab mix with a SIGHUP every 10 s and a scrape every
## second; checks every invariant at the end and exits 1 if one fails (root; not in CI)
SOAK_SECONDS ?= 600
soak: build
	$(SUDO) benches/soak $(SOAK_SECONDS)

## bench-e2e: greguard with and without the fast lane, bridge + `greguard nft`, and a bare XDP
## redirect on the same veth path and traffic; table on stdout, CSV in target/e2e.csv (root)
bench-e2e: build
	$(SUDO) benches/e2e $(E2E_ARGS)

## install: the binaries to $(PREFIX)/bin, the README and docs/ to $(PREFIX)/share/doc/greguard,
## the unit to /etc/systemd/system, the example policy to /etc/greguard/greguard.toml (an
## existing policy is left alone)
PREFIX ?= /usr/local
install: build
	$(SUDO) install -D -m 0755 target/release/greguard $(DESTDIR)$(PREFIX)/bin/greguard
	$(SUDO) install -D -m 0755 target/release/greguard-gen $(DESTDIR)$(PREFIX)/bin/greguard-gen
	$(SUDO) install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/doc/greguard README.md
	$(SUDO) install -D -m 0644 -t $(DESTDIR)$(PREFIX)/share/doc/greguard/docs docs/*.md
	sed -e 's|/usr/local/bin/greguard|$(PREFIX)/bin/greguard|g' \
	    -e 's|/usr/local/share/doc/greguard|$(PREFIX)/share/doc/greguard|g' systemd/greguard.service \
	  | $(SUDO) install -D -m 0644 /dev/stdin $(DESTDIR)/etc/systemd/system/greguard.service
	@if [ -e $(DESTDIR)/etc/greguard/greguard.toml ]; then \
	  echo "keeping the existing $(DESTDIR)/etc/greguard/greguard.toml"; \
	else \
	  $(SUDO) install -D -m 0640 systemd/greguard.toml $(DESTDIR)/etc/greguard/greguard.toml; \
	fi
	@echo "next: edit /etc/greguard/greguard.toml, then systemctl daemon-reload && systemctl enable --now greguard"

clean:
	$(CARGO) clean
