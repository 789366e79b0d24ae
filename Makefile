# SPDX-License-Identifier: MIT
# connscope build: BPF object -> skeleton -> daemon; the load client and the
# demo server need only a C compiler. `make deps` installs what the build and
# tests need; `make test` runs every test.

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
	libcjson-dev nettle-dev pkg-config iproute2 curl python3 prometheus \
	iptables

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror
# BPF_PROG() declares ctx and every tracepoint argument, used or not.
BPF_WARN := $(WARN) -Wno-unused-parameter
DEPFLAGS = -MMD -MP
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Each program's sources, and the libraries it alone links.
DAEMON_SRCS := $(wildcard src/daemon/*.c) src/common/netutil.c src/common/sbuf.c src/common/args.c \
	src/common/errmsg.c
DAEMON_LIBS := -lbpf -lelf -lz -lmicrohttpd -lcjson -lpthread -lm
LOAD_SRCS := $(wildcard src/load/*.c) src/common/netutil.c src/common/ws.c src/common/stomp.c \
	src/common/args.c src/common/errmsg.c
LOAD_LIBS := -lnettle -lm
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
.PHONY: all deps test clean demo bench bench-quick unit

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
	src/daemon/json.c src/daemon/diagnose.c src/daemon/names.c src/daemon/sockdiag.c \
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

bench: deps all
	$(Q)python3 scripts/bench.py

# The bench harness at small scale; make test runs it through tests/test_bench.py.
bench-quick: all
	$(Q)python3 scripts/bench.py --quick

demo: deps all
	$(Q)scripts/demo.sh

clean:
	$(call msg,CLEAN,$(OUT))
	$(Q)rm -rf $(OUT)

-include $(shell find $(OUT) -name '*.d' 2>/dev/null)
