# ugw: build, test, demo, bench, man, install. `make demo` and `make test` are the two
# commands a fresh machine needs; both do their own set-up.

SHELL        := /bin/bash
.SHELLFLAGS  := -o pipefail -c
PREFIX   ?= /usr/local
CARGO    ?= cargo
BINDIR    = $(DESTDIR)$(PREFIX)/bin
MANDIR    = $(DESTDIR)$(PREFIX)/share/man
BASHDIR   = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHDIR    = $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISHDIR   = $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
# One three-line binary per tool in src/bin/: the list of tools follows from it.
TOOLS     = $(sort $(basename $(notdir $(wildcard src/bin/ugw-*.rs))))

.PHONY: all build release test demo bench man check lint fmt install uninstall clean

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
	@status=0; $(CARGO) test --workspace --locked --no-fail-fast 2>&1 | tee target/test-output.log || status=$$?; \
	awk '/^test result:/ { passed += $$4; failed += $$6 } END { printf "%d passed, %d failed\n", passed, failed }' target/test-output.log; \
	exit $$status

demo: build
	bash examples/demo.sh

bench: release
	python3 bench/detect_latency.py
	python3 bench/migrate.py
	python3 bench/fetch_verify.py
	python3 bench/backup.py
	python3 bench/drain.py
	python3 bench/stage_swap.py

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

install: release
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man7 $(BASHDIR) $(ZSHDIR) $(FISHDIR)
	for t in $(TOOLS); do \
	  install -m 0755 target/release/$$t $(BINDIR)/$$t; \
	  install -m 0644 man/$$t.1 $(MANDIR)/man1/$$t.1; \
	  install -m 0644 completions/$$t.bash $(BASHDIR)/$$t; \
	  install -m 0644 completions/_$$t $(ZSHDIR)/_$$t; \
	  install -m 0644 completions/$$t.fish $(FISHDIR)/$$t.fish; \
	done
	install -m 0644 man/ugw.7 $(MANDIR)/man7/ugw.7

uninstall:
	for t in $(TOOLS); do \
	  rm -f $(BINDIR)/$$t $(MANDIR)/man1/$$t.1 $(BASHDIR)/$$t $(ZSHDIR)/_$$t $(FISHDIR)/$$t.fish; \
	done
	rm -f $(MANDIR)/man7/ugw.7

clean:
	$(CARGO) clean
