# gallra — the README's commands. Each installs what it needs on a fresh Debian machine.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
# Units, sysusers snippet and catalog go below $(PREFIX)/lib, which systemd searches for
# PREFIX=/usr/local (/usr/local/lib/systemd/system) as for a package's PREFIX=/usr
# (/usr/lib/systemd/system, the same directory as /lib/systemd/system on Debian 12).
# /etc/systemd/system stays the administrator's, for drop-ins (`systemctl edit gallra`).
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
CATALOGDIR ?= $(PREFIX)/lib/systemd/catalog
# The configuration and the credential files live in /etc whatever the PREFIX.
SYSCONFDIR ?= /etc
# `make install GALLRA_BINARY=path` installs that binary instead of building a release one.
GALLRA_BINARY ?=

.PHONY: all build release deb deb-test test faults faults-quick demo demo-reset bench footprint hot-functions clean format lint install uninstall

all: build

build:
	scripts/deps.sh
	swift build

# The Swift runtime linked statically, a position-dependent executable: scripts/release.sh says why.
release:
	scripts/deps.sh
	scripts/release.sh

# The Debian package .build/deb/gallra_VERSION_ARCH.deb of the release binary, checked by lintian
# (scripts/deb.sh; docs/packaging.md). deb-test installs, upgrades, removes and purges it in a Debian 12
# chroot (Tests/deb/package-test.sh; `make test` runs it too).
deb: release
	scripts/deb.sh

deb-test: release
	Tests/deb/package-test.sh

test:
	scripts/test.sh

# The fault campaign (docs/reliability.md): faults against `gallra run --once` on the demo shop, checked by an
# SQL oracle. faults-quick is the small version CI runs (a few minutes).
faults:
	scripts/faults.sh

faults-quick:
	FAULTS_QUICK=1 scripts/faults.sh

demo:
	scripts/demo.sh

# A demo kept with DEMO_KEEP=1: its shop as before the live run (DEMO_DIR, or the directory of $$GALLRA_CONFIG).
demo-reset:
	@scripts/demo.sh reset

# The benchmark (docs/benchmark.md): BENCH_N=100000 make bench for a quick one.
bench:
	scripts/deps.sh
	bench/run.sh
	bench/oneconn.sh
	bench/export.sh
	bench/erasure.sh
	bench/isolate.sh
	bench/replay.sh

# What the release binary costs: its size, the idle service's resident memory, a run's peak (bench/footprint.sh).
footprint: release
	bench/footprint.sh

# The functions a service's start and a live run execute, which the release build's linker places first
# (scripts/hot-functions.txt); needs valgrind.
hot-functions: release
	scripts/hot-functions.sh

format:
	swift format --in-place --recursive Package.swift Plugins Sources Tests

# What CI checks before the tests: the code is formatted as `make format` leaves it.
lint:
	swift format lint --strict --recursive Package.swift Plugins Sources Tests

clean:
	rm -rf .build

# The units name /usr/local/bin/gallra and /etc/gallra; other directories are substituted.
SUBSTITUTE = sed -e 's|/usr/local/bin/gallra|$(BINDIR)/gallra|g' -e 's|/etc/gallra/|$(SYSCONFDIR)/gallra/|g'

# Installs the binary, the units (with BINDIR and SYSCONFDIR substituted), the sysusers snippet,
# the journal catalog when there is one, and the example configuration only when there is none:
# an operator's file is never replaced. Without DESTDIR (a real install, not a staging tree) it
# also creates the gallra user, updates the catalog database and reloads systemd.
install: $(if $(GALLRA_BINARY),,release)
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(SYSCONFDIR)/gallra
	install -m 0755 $(or $(GALLRA_BINARY),.build/release/gallra) $(DESTDIR)$(BINDIR)/gallra
	@for unit in gallra.service gallra-plan.service gallra@.service; do \
		$(SUBSTITUTE) systemd/$$unit >$(DESTDIR)$(UNITDIR)/$$unit.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$unit.tmp && \
		mv $(DESTDIR)$(UNITDIR)/$$unit.tmp $(DESTDIR)$(UNITDIR)/$$unit || exit 1; \
	done
	install -m 0644 systemd/gallra.sysusers $(DESTDIR)$(SYSUSERSDIR)/gallra.conf
	@if [ -f systemd/gallra.catalog ]; then \
		install -d -m 0755 $(DESTDIR)$(CATALOGDIR) && \
		install -m 0644 systemd/gallra.catalog $(DESTDIR)$(CATALOGDIR)/gallra.catalog; \
	fi
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/gallra/gallra.yaml ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/gallra/gallra.yaml (config/gallra.yaml documents every key)"; \
	else \
		install -m 0644 config/gallra.yaml $(DESTDIR)$(SYSCONFDIR)/gallra/gallra.yaml; \
	fi
	@if [ -z "$(DESTDIR)" ]; then \
		systemd-sysusers $(SYSUSERSDIR)/gallra.conf; \
		[ ! -f $(CATALOGDIR)/gallra.catalog ] || journalctl --update-catalog; \
		[ ! -d /run/systemd/system ] || systemctl daemon-reload; \
		[ -e $(SYSCONFDIR)/gallra/audit-key ] || echo "next: create the audit key: (umask 077; head -c 32 /dev/urandom >$(SYSCONFDIR)/gallra/audit-key)"; \
	fi

# Removes what install put in place except the configuration, the credentials and the user.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gallra $(DESTDIR)$(UNITDIR)/gallra.service \
		$(DESTDIR)$(UNITDIR)/gallra-plan.service $(DESTDIR)$(UNITDIR)/gallra@.service \
		$(DESTDIR)$(SYSUSERSDIR)/gallra.conf \
		$(DESTDIR)$(CATALOGDIR)/gallra.catalog
	@if [ -z "$(DESTDIR)" ]; then \
		[ ! -d /run/systemd/system ] || systemctl daemon-reload; \
		echo "kept $(SYSCONFDIR)/gallra and the gallra user"; \
	fi
