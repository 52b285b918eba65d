# jobd — build, test, run.  See README.md.
#
#   make            build jobd and jobctl (build/release/)
#   make run        install missing packages, build, run jobd on conf/jobd.dev.conf
#   make check      install missing packages, unit tests + black-box tests
#   make asan       the same suites under AddressSanitizer + UBSan
#   make tsan       the same suites under ThreadSanitizer
#   make deps       install missing Debian packages (needs root)

CC	?= cc
PKG_CONFIG ?= pkg-config
PYTHON	?= /usr/bin/python3
PREFIX	?= /usr/local
DESTDIR	?=

VARIANT	?= release
O	 = build/$(VARIANT)

PKGS	 = libevent libevent_pthreads jansson libconfig libsystemd
WARN	 = -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes \
	   -Wstrict-prototypes -Wwrite-strings -Wpointer-arith
ifeq ($(WERROR),1)
WARN	+= -Werror
endif
OPT	?= -O2 -g
SAN_asan = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_tsan = -fsanitize=thread
SAN	 = $(SAN_$(VARIANT))

CFLAGS_ALL  = -std=c11 $(WARN) $(OPT) $(SAN) -D_GNU_SOURCE -pthread \
	      $(shell $(PKG_CONFIG) --cflags $(PKGS)) $(CFLAGS)
LDLIBS_ALL  = $(shell $(PKG_CONFIG) --libs $(PKGS)) -pthread $(LDLIBS)
CHECK_LIBS  = $(shell $(PKG_CONFIG) --libs check)

COMMON	 = util log
DAEMON	 = $(COMMON) config protocol pending workq runner completion pool job \
	   events metrics listen systemd status auth spawn jobrec journal \
	   persist \
	   sched server ops jobd
JOBCTL	 = $(COMMON) config protocol ctl_cmd ctl_fmt ctl_conn ctl_job \
	   ctl_daemon jobctl
UNITS	 = config protocol pending workq runner jobrec journal

# What a module's unit test links beyond the module, util and log.
TEST_DEPS_runner = spawn
TEST_DEPS_jobrec = job protocol

obj	 = $(patsubst %,$(O)/daemon/%.o,$(1))

all: $(O)/jobd $(O)/jobctl

$(O)/daemon/%.o: daemon/%.c daemon/*.h | $(O)/daemon
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(O)/jobd: $(call obj,$(DAEMON))
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(O)/jobctl: $(call obj,$(JOBCTL))
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# One Check suite per module, linked against that module (plus util/log and
# its TEST_DEPS_<module>).
.SECONDEXPANSION:
$(O)/tests/check_%: tests/unit/check_%.c $(O)/daemon/%.o $(call obj,$(COMMON)) \
    $$(call obj,$$(TEST_DEPS_$$*)) | $(O)/tests
	$(CC) $(CFLAGS_ALL) -iquote daemon -o $@ $^ $(CHECK_LIBS) $(LDLIBS_ALL)

$(O)/daemon $(O)/tests:
	mkdir -p $@

units: $(patsubst %,$(O)/tests/check_%,$(UNITS))

deps:
	@scripts/deps.sh

# The test targets.  Each runs every unit suite, then the black-box suite
# against the freshly built daemon.
test-unit: units
	@set -e; for t in $(UNITS); do \
		echo "== unit: $$t ($(VARIANT))"; $(O)/tests/check_$$t; \
	done

test-blackbox: all
	JOBD=$(CURDIR)/$(O)/jobd JOBCTL=$(CURDIR)/$(O)/jobctl VARIANT=$(VARIANT) \
		$(PYTHON) -m pytest -q -p no:cacheprovider tests/blackbox $(PYTEST_ARGS)

check: deps
	$(MAKE) VARIANT=release test-unit test-blackbox check-units \
		check-install check-man

asan: deps
	$(MAKE) VARIANT=asan OPT="-O1 -g" test-unit test-blackbox

tsan: deps
	$(MAKE) VARIANT=tsan OPT="-O1 -g" test-unit test-blackbox

# The journal decoder's libFuzzer target (clang), run for FUZZ_SECONDS.
FUZZ_SECONDS ?= 30
fuzz: deps
	mkdir -p build/fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
		-iquote daemon -o build/fuzz/fuzz_journal \
		tests/fuzz/fuzz_journal.c daemon/journal.c daemon/util.c \
		daemon/log.c -lpthread
	@r=0; TMPDIR=/dev/shm build/fuzz/fuzz_journal \
		-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=build/fuzz/ > build/fuzz/log 2>&1 || r=$$?; \
	tail -4 build/fuzz/log; exit $$r

run: deps all
	@scripts/run-dev.sh $(O)/jobd conf/jobd.dev.conf

clean:
	rm -rf build run

.PHONY: all deps units test-unit test-blackbox check asan tsan fuzz run clean

# ---------------------------------------------------------------------------
# Installation: binaries, systemd units, man pages, bash completion.
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc] ...
#   make uninstall (same variables)
#
# jobd goes to $(BINDIR), not sbin: ordinary users run it too (a per-user
# instance, `jobd --check-config`), and sbin is not in their PATH on Debian.
# The units name /usr/local/bin, /usr/local/share and /etc/jobd; install
# rewrites those to BINDIR, DATADIR and SYSCONFDIR (INSTALL_SED), so the
# files in systemd/ stay valid units for systemd-analyze as they are.
# $(SYSCONFDIR)/jobd/jobd.conf is installed only if absent (an admin's
# config is never overwritten); uninstall removes it only while it is
# still identical to the example installed beside it, else it says so.
# uninstall leaves what jobd and the admin made: /var/lib/jobd (the
# journal) and the group jobd (files may belong to it).
BINDIR		?= $(PREFIX)/bin
DATADIR		?= $(PREFIX)/share
PKGDATADIR	?= $(DATADIR)/jobd
DOCDIR		?= $(DATADIR)/doc/jobd
MANDIR		?= $(DATADIR)/man
BASHCOMPDIR	?= $(DATADIR)/bash-completion/completions
SYSCONFDIR	?= /etc
UNITDIR		?= /lib/systemd/system
USERUNITDIR	?= /usr/lib/systemd/user
SYSUSERSDIR	?= /usr/lib/sysusers.d
INSTALL		?= install

INSTALL_SED	 = sed -e 's|/usr/local/bin/|$(BINDIR)/|g' \
		       -e 's|/usr/local/share/doc/jobd/|$(DOCDIR)/|g' \
		       -e 's|/usr/local/share/jobd/|$(PKGDATADIR)/|g'
INSTALL_SED_UNIT = $(INSTALL_SED) -e 's|/etc/jobd/|$(SYSCONFDIR)/jobd/|g'

# Source and destination pairs (DESTDIR is added by the recipes).
INSTALL_UNITS	 = systemd/jobd.service:$(UNITDIR)/jobd.service \
		   systemd/jobd.socket:$(UNITDIR)/jobd.socket \
		   systemd/jobd-status.socket:$(UNITDIR)/jobd-status.socket \
		   systemd/user/jobd.service:$(USERUNITDIR)/jobd.service \
		   systemd/user/jobd.socket:$(USERUNITDIR)/jobd.socket
INSTALL_DATA	 = systemd/jobd.sysusers:$(SYSUSERSDIR)/jobd.conf \
		   conf/jobd.example.conf:$(PKGDATADIR)/jobd.example.conf \
		   systemd/jobd-user.conf:$(PKGDATADIR)/jobd-user.conf \
		   systemd/jobd-strict.conf:$(PKGDATADIR)/jobd-strict.conf \
		   docs/spec.md:$(DOCDIR)/spec.md \
		   docs/decisions.md:$(DOCDIR)/decisions.md \
		   docs/jobctl.md:$(DOCDIR)/jobctl.md \
		   completion/jobctl.bash:$(BASHCOMPDIR)/jobctl
INSTALL_MAN	 = man/jobctl.1:$(MANDIR)/man1/jobctl.1 \
		   man/jobd.conf.5:$(MANDIR)/man5/jobd.conf.5 \
		   man/jobd.8:$(MANDIR)/man8/jobd.8
INSTALL_CONF	 = $(SYSCONFDIR)/jobd/jobd.conf

install: all
	@set -e; \
	inst() { mode=$$1 src=$$2 dst=$(DESTDIR)$$3; \
		$(INSTALL) -d -m 0755 "$${dst%/*}"; \
		echo "install $$src -> $$dst"; \
		case $${4-} in \
		unit)	$(INSTALL_SED_UNIT) "$$src" > "$$dst.tmp";; \
		man)	$(INSTALL_SED) "$$src" > "$$dst.tmp";; \
		*)	cp "$$src" "$$dst.tmp";; \
		esac; \
		chmod $$mode "$$dst.tmp"; mv -f "$$dst.tmp" "$$dst"; }; \
	inst 0755 $(O)/jobd $(BINDIR)/jobd; \
	inst 0755 $(O)/jobctl $(BINDIR)/jobctl; \
	for p in $(INSTALL_UNITS); do inst 0644 $${p%%:*} $${p#*:} unit; done; \
	for p in $(INSTALL_MAN); do inst 0644 $${p%%:*} $${p#*:} man; done; \
	for p in $(INSTALL_DATA); do inst 0644 $${p%%:*} $${p#*:}; done; \
	if [ -e "$(DESTDIR)$(INSTALL_CONF)" ]; then \
		echo "keep    $(DESTDIR)$(INSTALL_CONF) (it exists)"; \
	else \
		inst 0644 conf/jobd.example.conf $(INSTALL_CONF); \
	fi
	@if [ -z "$(DESTDIR)" ]; then \
		echo "next: systemd-sysusers $(SYSUSERSDIR)/jobd.conf &&" \
		    "systemctl daemon-reload &&" \
		    "systemctl enable --now jobd.socket jobd-status.socket jobd.service"; \
	fi

uninstall:
	@set -e; \
	conf=$(DESTDIR)$(INSTALL_CONF); \
	if [ -e "$$conf" ]; then \
		if cmp -s "$$conf" "$(DESTDIR)$(PKGDATADIR)/jobd.example.conf"; then \
			echo "rm $$conf"; rm -f "$$conf"; \
		else \
			echo "keep $$conf (changed since install)"; \
		fi; \
	fi; \
	for p in $(O)/jobd:$(BINDIR)/jobd $(O)/jobctl:$(BINDIR)/jobctl \
	    $(INSTALL_UNITS) $(INSTALL_MAN) $(INSTALL_DATA); do \
		f=$(DESTDIR)$${p#*:}; \
		if [ -e "$$f" ]; then echo "rm $$f"; rm -f "$$f"; fi; \
	done; \
	for d in $(PKGDATADIR) $(DOCDIR) $(SYSCONFDIR)/jobd; do \
		rmdir "$(DESTDIR)$$d" 2>/dev/null || true; \
	done

# Checks of the non-C parts (systemd units; install/uninstall and the bash
# completion; man pages).  Each script ends with "N passed, M failed".
check-units: all
	JOBD=$(CURDIR)/$(O)/jobd JOBCTL=$(CURDIR)/$(O)/jobctl \
		tests/systemd/check-units.sh

check-install: all
	MAKE="$(MAKE)" VARIANT=$(VARIANT) tests/install/check-install.sh
	JOBD=$(CURDIR)/$(O)/jobd JOBCTL=$(CURDIR)/$(O)/jobctl \
		tests/install/check-completion.sh

check-man: all
	JOBD=$(CURDIR)/$(O)/jobd JOBCTL=$(CURDIR)/$(O)/jobctl \
		tests/install/check-man.sh

.PHONY: install uninstall check-units check-install check-man
