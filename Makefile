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

PKGS	 = libevent libevent_pthreads jansson libconfig
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
	   events metrics listen status \
	   sched server ops jobd
JOBCTL	 = $(COMMON) config protocol jobctl
UNITS	 = config protocol pending workq runner

obj	 = $(patsubst %,$(O)/daemon/%.o,$(1))

all: $(O)/jobd $(O)/jobctl

$(O)/daemon/%.o: daemon/%.c daemon/*.h | $(O)/daemon
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(O)/jobd: $(call obj,$(DAEMON))
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(O)/jobctl: $(call obj,$(JOBCTL))
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

# One Check suite per module, linked against that module alone (plus util/log).
$(O)/tests/check_%: tests/unit/check_%.c $(O)/daemon/%.o $(call obj,$(COMMON)) | $(O)/tests
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
	$(MAKE) VARIANT=release test-unit test-blackbox

asan: deps
	$(MAKE) VARIANT=asan OPT="-O1 -g" test-unit test-blackbox

tsan: deps
	$(MAKE) VARIANT=tsan OPT="-O1 -g" test-unit test-blackbox

run: deps all
	@scripts/run-dev.sh $(O)/jobd conf/jobd.dev.conf

clean:
	rm -rf build run

.PHONY: all deps units test-unit test-blackbox check asan tsan run clean
