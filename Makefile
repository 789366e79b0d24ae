# SPDX-License-Identifier: MIT
# connscope build: BPF object -> skeleton -> daemon; the load client and the
# demo server need only a C compiler. `make deps` installs what the build and
# tests need; `make test` runs every test, on this kernel and in a 6.1 guest.

OUT := build
CLANG ?= clang
BPFTOOL ?= bpftool
LLVM_STRIP ?= llvm-strip
CC ?= cc
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/;s/ppc64le/powerpc/;s/s390x/s390/')
# Kernel types come from a vmlinux.h kept in the tree (one per architecture),
# not from the build host's BTF: CO-RE adapts field offsets at load time, so
# one build runs on every supported kernel.
VMLINUX_H := bpf/vmlinux/$(ARCH)/vmlinux.h

DEB_PACKAGES := clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libmicrohttpd-dev \
	libcjson-dev nettle-dev pkg-config iproute2 curl python3 prometheus nftables \
	qemu-system-x86 busybox-static kmod file
DEB_PACKAGES += libseccomp-dev libgnutls28-dev libyaml-dev libcrypt-dev openssl util-linux
DEB_PACKAGES += iptables

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror
# BPF_PROG() declares ctx and every tracepoint argument, used or not.
BPF_WARN := $(WARN) -Wno-unused-parameter
DEPFLAGS = -MMD -MP
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Each program's sources, and the libraries it alone links.
DAEMON_SRCS := $(wildcard src/daemon/*.c) src/common/netutil.c src/common/sbuf.c src/common/args.c \
	src/common/errmsg.c
DAEMON_LIBS := -lbpf -lelf -lz -lmicrohttpd -lcjson -lpthread -lm -lgnutls -lyaml -lcrypt -lseccomp
LOAD_SRCS := $(wildcard src/load/*.c) src/common/netutil.c src/common/ws.c src/common/stomp.c \
	src/common/args.c src/common/errmsg.c
LOAD_LIBS := -lnettle -lcjson -lm
DEMO_SRCS := $(wildcard src/demo/*.c) src/common/netutil.c src/common/ws.c src/common/stomp.c \
	src/common/args.c src/common/errmsg.c
DEMO_LIBS := -lnettle

# Includes by program: a daemon file sees daemon and common headers, never the
# load client's; include/ holds what the BPF side shares.
INC_common := -Iinclude -Isrc/common
INC_daemon := $(INC_common) -Isrc/daemon -I$(OUT)
INC_load := $(INC_common) -Isrc/load
INC_demo := $(INC_common) -Isrc/demo
# src/<program>/x.c -> that program's includes
inc = $(INC_$(word 2,$(subst /, ,$(1))))

obj = $(patsubst src/%.c,$(OUT)/obj/%.o,$(1))
san = $(patsubst src/%.c,$(OUT)/san/%.o,$(1))

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY: $(OUT)/connscope.bpf.o $(OUT)/connscope.skel.h
.PHONY: all deps test test-kernels clean demo bench bench-quick unit fuzz soak

all: $(OUT)/connscope $(OUT)/connscope-load $(OUT)/connscope-demo-server

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -z "$$missing" ]; then echo "  DEPS     all present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "make deps: need root to install:$$missing" >&2; exit 1; fi; \
	echo "  DEPS     installing" $$missing; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null

$(OUT):
	$(Q)mkdir -p $@

$(OUT)/%.bpf.o: bpf/%.bpf.c $(VMLINUX_H) | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Iinclude -Ibpf -I$(dir $(VMLINUX_H)) \
		$(BPF_WARN) $(DEPFLAGS) -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name connscope_bpf > $@

# Only the file that opens the skeleton waits for it.
$(OUT)/obj/daemon/probes.o $(OUT)/san/daemon/probes.o: $(OUT)/connscope.skel.h

$(OUT)/obj/%.o: src/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(WARN) -std=gnu11 $(call inc,$<) $(DEPFLAGS) -c $< -o $@

$(OUT)/san/%.o: src/%.c
	$(call msg,CC-SAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -O1 -g $(SAN) $(WARN) -std=gnu11 $(call inc,$<) $(DEPFLAGS) -c $< -o $@

$(OUT)/connscope: $(call obj,$(DAEMON_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(DAEMON_LIBS) -o $@

$(OUT)/connscope-load: $(call obj,$(LOAD_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LOAD_LIBS) -o $@

$(OUT)/connscope-demo-server: $(call obj,$(DEMO_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(DEMO_LIBS) -o $@

# The daemon under ASan/UBSan: the real-kernel tests run this one.
$(OUT)/connscope-san: $(call san,$(DAEMON_SRCS))
	$(call msg,LINK,$@)
	$(Q)$(CC) $(SAN) $^ $(DAEMON_LIBS) -o $@

# Unit tests: one file per module (tests/unit/test_<module>.c), each linked
# with the modules it tests, all run by tests/unit/unit.c's runner.
UNIT_MODULES := src/daemon/history.c src/daemon/events.c src/daemon/snapshot.c src/daemon/prom.c \
	src/daemon/json.c src/daemon/diagnose.c src/daemon/diagnose_conn.c src/daemon/procfs.c \
	src/daemon/names.c src/daemon/sockdiag.c \
	src/common/sbuf.c src/common/netutil.c src/common/ws.c src/common/stomp.c src/common/args.c src/common/errmsg.c
UNIT_TESTS := $(wildcard tests/unit/*.c)
$(OUT)/unit-tests: $(UNIT_TESTS) $(call san,$(UNIT_MODULES))
	$(call msg,LINK,$@)
	$(Q)$(CC) -O1 -g $(SAN) $(WARN) -std=gnu11 $(INC_daemon) -Itests/unit $^ $(DAEMON_LIBS) -lnettle -o $@

unit: $(OUT)/unit-tests
	$(Q)$(OUT)/unit-tests

test: deps
	$(Q)$(MAKE) --no-print-directory all $(OUT)/connscope-san $(OUT)/unit-tests
	$(Q)python3 tests/harness/run.py

# Only the tests inside the Debian 12 (Linux 6.1) guest, same build
# (tests/kernels/; make test runs them too).
test-kernels: deps
	$(Q)$(MAKE) --no-print-directory all $(OUT)/connscope-san
	$(Q)python3 tests/harness/run.py guest61

# libFuzzer targets tests/fuzz/fuzz_<t>.c, each linked with the parser it
# feeds; seeds in tests/fuzz/corpus/<t>/. `make fuzz` runs each for
# FUZZ_SECONDS and keeps what it finds in build/fuzz/corpus/<t>/ (crashes as
# build/fuzz/crash-<t>-*); tests/test_fuzz.py runs each over its seeds and 20 s.
FUZZ_CC ?= clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 120
FUZZ_TARGETS := args procfs sockdiag ws stomp
FUZZ_SRCS_args := src/common/args.c src/common/errmsg.c
FUZZ_SRCS_procfs := src/daemon/procfs.c src/daemon/names.c
FUZZ_SRCS_sockdiag := src/daemon/sockdiag.c src/common/netutil.c src/common/errmsg.c
FUZZ_SRCS_ws := src/common/ws.c
FUZZ_SRCS_stomp := src/common/stomp.c
FUZZ_LIBS_ws := -lnettle
FUZZ_LIBS_procfs := -lbpf
define fuzz_rule
$(OUT)/fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_SRCS_$(1))
	$$(call msg,FUZZ-CC,$$@)
	$$(Q)mkdir -p $$(@D)
	$$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) $(WARN) -std=gnu11 $(INC_daemon) $$^ $(FUZZ_LIBS_$(1)) -o $$@
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

fuzz: $(FUZZ_TARGETS:%=$(OUT)/fuzz/fuzz_%)
	$(Q)for t in $(FUZZ_TARGETS); do \
		mkdir -p $(OUT)/fuzz/corpus/$$t; \
		echo "  FUZZ     $$t for $(FUZZ_SECONDS) s"; \
		$(OUT)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
			-artifact_prefix=$(OUT)/fuzz/crash-$$t- $(OUT)/fuzz/corpus/$$t tests/fuzz/corpus/$$t \
			2>$(OUT)/fuzz/$$t.log || { tail -30 $(OUT)/fuzz/$$t.log; exit 1; }; \
	done

bench: deps all
	$(Q)python3 scripts/bench.py

# Minutes of churn: accepts and connections_open against the server's, lost
# events, RSS slope (not in make test; MINUTES=10 by default).
soak: deps all
	$(Q)python3 scripts/soak.py --minutes $(or $(MINUTES),10)

# The bench harness at small scale; make test runs it through tests/test_bench.py.
bench-quick: all
	$(Q)python3 scripts/bench.py --quick

demo: deps all
	$(Q)scripts/demo.sh

clean:
	$(call msg,CLEAN,$(OUT))
	$(Q)rm -rf $(OUT)

-include $(shell find $(OUT) -name '*.d' 2>/dev/null)

# --- Live page, install, man pages, systemd unit, Debian package ---------
# The page's HTML, script and style become C arrays linked into the daemon, so
# it serves them with no file on disk and nothing fetched from elsewhere.
PAGE_ASSETS := src/daemon/page/index.html src/daemon/page/page.js src/daemon/page/page.css
DEB_PACKAGES += xxd chromium mandoc debhelper lintian systemd

$(OUT)/page_assets.c: $(PAGE_ASSETS) | $(OUT)
	$(call msg,EMBED,$@)
	$(Q){ echo '/* Generated by the Makefile from src/daemon/page/: do not edit. */'; \
	  echo '#include <stddef.h>'; \
	  for f in $(PAGE_ASSETS); do n=page_$$(basename $$f | tr '.-' '__'); \
	    echo "const unsigned char $$n[] = {"; xxd -i < $$f; echo "};"; \
	    echo "const size_t $${n}_len = sizeof($$n);"; done; } > $@

$(OUT)/obj/page_assets.o $(OUT)/san/page_assets.o: $(OUT)/page_assets.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -O1 $(WARN) -std=gnu11 -c $< -o $@

$(OUT)/connscope: $(OUT)/obj/page_assets.o
$(OUT)/connscope-san: $(OUT)/san/page_assets.o

# make install [PREFIX=/usr/local] [DESTDIR=...]: the daemon in sbin (an admin
# tool, section 8), the two tools in bin, man pages, dashboards, the unit.
PREFIX ?= /usr/local
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
VERSION := $(shell sed -n 's/^\#define CS_VERSION "\(.*\)"/\1/p' src/daemon/prom.h)
DEB_ARCH = $(shell dpkg --print-architecture)
DASHBOARD_FILES := $(wildcard dashboards/*.json dashboards/*.yml)
MAN_PAGES := src/daemon/connscope.8 src/load/connscope-load.1 src/demo/connscope-demo-server.1
.PHONY: install uninstall deb

install: all
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/connscope/dashboards \
		$(DESTDIR)$(SYSTEMD_UNIT_DIR)
	$(Q)install -m 0755 $(OUT)/connscope $(DESTDIR)$(PREFIX)/sbin/connscope
	$(Q)install -m 0755 $(OUT)/connscope-load $(OUT)/connscope-demo-server $(DESTDIR)$(PREFIX)/bin/
	$(Q)install -m 0644 src/daemon/connscope.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	$(Q)install -m 0644 src/load/connscope-load.1 src/demo/connscope-demo-server.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	$(Q)install -m 0644 $(DASHBOARD_FILES) $(DESTDIR)$(PREFIX)/share/connscope/dashboards/
	$(Q)sed 's|/usr/sbin/connscope|$(PREFIX)/sbin/connscope|' 'src/daemon/connscope@.service' \
		> '$(DESTDIR)$(SYSTEMD_UNIT_DIR)/connscope@.service'
	$(Q)chmod 0644 '$(DESTDIR)$(SYSTEMD_UNIT_DIR)/connscope@.service'

uninstall:
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(DESTDIR)$(PREFIX)/sbin/connscope $(DESTDIR)$(PREFIX)/bin/connscope-load \
		$(DESTDIR)$(PREFIX)/bin/connscope-demo-server $(DESTDIR)$(PREFIX)/share/man/man8/connscope.8 \
		$(DESTDIR)$(PREFIX)/share/man/man1/connscope-load.1 \
		$(DESTDIR)$(PREFIX)/share/man/man1/connscope-demo-server.1 \
		'$(DESTDIR)$(SYSTEMD_UNIT_DIR)/connscope@.service'
	$(Q)rm -rf $(DESTDIR)$(PREFIX)/share/connscope

# make deb: build/connscope_<version>_<arch>.deb with debhelper, from a copy
# of the tree with scripts/debian/ as its debian/; the changelog carries
# CS_VERSION so the package and `connscope --version` agree.
DEB_TREE := Makefile bpf include src dashboards scripts LICENSE LICENSES README.md
deb:
	$(call msg,DEB,$(OUT)/connscope_$(VERSION)_$(DEB_ARCH).deb)
	$(Q)rm -rf $(OUT)/deb && mkdir -p $(OUT)/deb/connscope-$(VERSION)
	$(Q)cp -a $(DEB_TREE) $(OUT)/deb/connscope-$(VERSION)/
	$(Q)cp -a scripts/debian $(OUT)/deb/connscope-$(VERSION)/debian
	$(Q)printf 'connscope (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- connscope maintainers <connscope@example.org>  %s\n' \
		'$(VERSION)' '$(VERSION)' "$$(date -R)" > $(OUT)/deb/connscope-$(VERSION)/debian/changelog
	$(Q)cd $(OUT)/deb/connscope-$(VERSION) && dpkg-buildpackage -b -us -uc > ../build.log 2>&1 \
		|| { tail -30 ../build.log >&2; exit 1; }
	$(Q)mv $(OUT)/deb/connscope_$(VERSION)_$(DEB_ARCH).deb $(OUT)/
