# ugw: build, test, demo, bench, man, install. `make demo` and `make test` are the two
# commands a fresh machine needs; both do their own set-up.

SHELL        := /bin/bash
.SHELLFLAGS  := -o pipefail -c
PREFIX   ?= /usr/local
CARGO    ?= cargo
# What `make install` installs: the release build (thin LTO: minutes on a busy machine), or
# PROFILE=debug, the build `make demo` and `make test` made already (nothing to wait for).
PROFILE  ?= release
BINDIR    = $(DESTDIR)$(PREFIX)/bin
MANDIR    = $(DESTDIR)$(PREFIX)/share/man
BASHDIR   = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHDIR    = $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISHDIR   = $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
# One three-line binary per tool in src/bin/: the list of tools follows from it.
TOOLS     = $(sort $(basename $(notdir $(wildcard src/bin/ugw-*.rs))))
# Every page `make man` wrote: one per tool and one per subcommand (ugw-backup-create.1, ...).
MAN1      = $(sort $(wildcard man/ugw-*.1))
# Where cargo builds, as cargo itself says (CARGO_TARGET_DIR, build.target-dir of a
# .cargo/config.toml, or ./target): asked once, and only by the targets that use it.
TARGET_DIR = $(eval TARGET_DIR := $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null))$(TARGET_DIR)
# The folder of PROFILE's build in it, and the cargo flag that builds it.
PROFILE_DIR   = $(if $(filter dev debug,$(PROFILE)),debug,$(PROFILE))
PROFILE_FLAGS = $(if $(filter dev debug,$(PROFILE)),,$(if $(filter release,$(PROFILE)),--release,--profile $(PROFILE)))

.PHONY: all build release test demo demo-compose bench man check lint fmt install install-build uninstall clean fuzz

all: build

build:
	$(CARGO) build --workspace --locked

release:
	$(CARGO) build --workspace --locked --release

# The integration tests run the real binaries (and the demo service), so build them first.
# The last line sums up every test binary's result ("N passed, N failed"), whether they
# passed or not (--no-fail-fast: one failing binary does not hide the others); the exit
# status is cargo's.
test: build
	@[ -n "$(TARGET_DIR)" ] || { echo "make: cannot ask cargo where it builds (cargo metadata failed)" >&2; exit 1; }
	@status=0; $(CARGO) test --workspace --locked --no-fail-fast 2>&1 | tee "$(TARGET_DIR)/test-output.log" || status=$$?; \
	awk '/^test result:/ { passed += $$4; failed += $$6 } END { printf "%d passed, %d failed\n", passed, failed }' "$(TARGET_DIR)/test-output.log"; \
	exit $$status

demo: build
	@[ -n "$(TARGET_DIR)" ] || { echo "make: cannot ask cargo where it builds (cargo metadata failed)" >&2; exit 1; }
	UGW_BIN_DIR="$(TARGET_DIR)/debug" bash examples/demo.sh

# The Compose stack of examples/compose/ upgraded on loopback (needs Docker, Compose, HAProxy
# and docker-registry): web start-first behind HAProxy, worker stop-first, a bad image's
# failure path; everything it made in Docker is removed on exit.
demo-compose: build
	@[ -n "$(TARGET_DIR)" ] || { echo "make: cannot ask cargo where it builds (cargo metadata failed)" >&2; exit 1; }
	UGW_BIN_DIR="$(TARGET_DIR)/debug" bash examples/compose/demo.sh

# Every benchmark, then bench/RESULTS.md from the table each one left in bench/results/ (one
# that misses a target does not stop the others; the exit status says whether any did).
bench: release
	@since=$$(date +%s); status=0; \
	python3 bench/detect_latency.py --out bench/results/detect-latency.md || status=1; \
	python3 bench/fetch_verify.py || status=1; \
	python3 bench/backup.py || status=1; \
	python3 bench/migrate.py --out bench/results/migrate.md || status=1; \
	python3 bench/migrate.py --shape real --out bench/results/migrate-real.md || status=1; \
	python3 bench/drain.py || status=1; \
	python3 bench/stage_swap.py || status=1; \
	python3 bench/rolling_upgrade.py --find-max || status=1; \
	if [ -f bench/compose.py ]; then python3 bench/compose.py || status=1; fi; \
	python3 bench/collect.py --since $$since --command "make bench" >/dev/null && echo "wrote bench/RESULTS.md"; \
	exit $$status

man:
	$(CARGO) run --quiet --locked -p xtask -- man

# Generated files current, formatting, and lints.
check:
	$(CARGO) run --quiet --locked -p xtask -- check
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

# Builds PROFILE first (cargo does nothing when it is current). Every file must be there: a
# missing binary or page stops the install with an error, never "installed" nothing.
install: install-build
	@[ -n "$(TARGET_DIR)" ] || { echo "make: cannot ask cargo where it builds (cargo metadata failed); nothing installed" >&2; exit 1; }
	@[ -n "$(TOOLS)" ] || { echo "make: no tools found in src/bin/; nothing installed" >&2; exit 1; }
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man7 $(BASHDIR) $(ZSHDIR) $(FISHDIR)
	for t in $(TOOLS); do \
	  install -m 0755 "$(TARGET_DIR)/$(PROFILE_DIR)/$$t" $(BINDIR)/$$t \
	  && install -m 0644 completions/$$t.bash $(BASHDIR)/$$t \
	  && install -m 0644 completions/_$$t $(ZSHDIR)/_$$t \
	  && install -m 0644 completions/$$t.fish $(FISHDIR)/$$t.fish \
	  || { echo "make: installing $$t failed (built with PROFILE=$(PROFILE) in $(TARGET_DIR)?)" >&2; exit 1; }; \
	done
	install -m 0644 $(MAN1) $(MANDIR)/man1/
	install -m 0644 man/ugw.7 $(MANDIR)/man7/ugw.7
	@echo "installed $(words $(TOOLS)) tools ($(PROFILE) build from $(TARGET_DIR)/$(PROFILE_DIR)) and $(words $(MAN1)) man pages under $(DESTDIR)$(PREFIX)"

install-build:
	$(CARGO) build --workspace --locked $(PROFILE_FLAGS)

uninstall:
	for t in $(TOOLS); do \
	  rm -f $(BINDIR)/$$t $(BASHDIR)/$$t $(ZSHDIR)/_$$t $(FISHDIR)/$$t.fish; \
	done
	rm -f $(addprefix $(MANDIR)/man1/,$(notdir $(MAN1))) $(MANDIR)/man7/ugw.7

clean:
	$(CARGO) clean
