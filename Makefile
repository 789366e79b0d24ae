# SPDX-License-Identifier: MIT
# connscope build: BPF objects -> skeletons -> daemon, tools, tests.
# `make deps` installs what the build and tests need; `make test` runs all.

OUT := build
CLANG ?= clang
BPFTOOL ?= bpftool
LLVM_STRIP ?= llvm-strip
CC ?= cc
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/;s/ppc64le/powerpc/;s/s390x/s390/')

DEB_PACKAGES := clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev libmicrohttpd-dev \
	libcjson-dev nettle-dev pkg-config iproute2 curl python3 prometheus

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror
# BPF_PROG() declares ctx and every tracepoint argument, used or not.
BPF_WARN := $(WARN) -Wno-unused-parameter
INCLUDES := -Iinclude -I$(OUT) -Isrc
LIBS := -lbpf -lelf -lz -lmicrohttpd -lcjson -lnettle -lpthread -lm
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

DAEMON_SRCS := main.c collector.c probes.c procfs.c sockdiag.c history.c events.c \
	snapshot.c prom.c json.c diagnose.c http.c names.c sbuf.c netutil.c
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(OUT)/obj/%.o)
DAEMON_SAN_OBJS := $(DAEMON_SRCS:%.c=$(OUT)/san/%.o)
HEADERS := $(wildcard src/*.h include/connscope/*.h) $(OUT)/connscope.skel.h

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

$(OUT) $(OUT)/obj $(OUT)/san:
	$(Q)mkdir -p $@

$(OUT)/vmlinux.h: | $(OUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(OUT)/%.bpf.o: bpf/%.bpf.c bpf/connscope.bpf.h include/connscope/connscope.h $(OUT)/vmlinux.h | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) $(INCLUDES) -Ibpf $(BPF_WARN) -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name connscope_bpf > $@

$(OUT)/obj/%.o: src/%.c $(HEADERS) | $(OUT)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(WARN) -std=gnu11 $(INCLUDES) -c $< -o $@

$(OUT)/san/%.o: src/%.c $(HEADERS) | $(OUT)/san
	$(call msg,CC-SAN,$@)
	$(Q)$(CC) -O1 -g $(SAN) $(WARN) -std=gnu11 $(INCLUDES) -c $< -o $@

$(OUT)/connscope: $(DAEMON_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LIBS) -o $@

LOAD_SRCS := load_main.c load.c ws.c stomp.c netutil.c
$(OUT)/connscope-load: $(LOAD_SRCS:%.c=$(OUT)/obj/%.o)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ -lnettle -lm -o $@

DEMO_SRCS := demo_server.c ws.c stomp.c netutil.c
$(OUT)/connscope-demo-server: $(DEMO_SRCS:%.c=$(OUT)/obj/%.o)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ -lnettle -o $@

# The daemon under ASan/UBSan: the real-kernel tests run this one.
$(OUT)/connscope-san: $(DAEMON_SAN_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(SAN) $^ $(LIBS) -o $@

UNIT_SRCS := history.c events.c snapshot.c prom.c json.c diagnose.c names.c sbuf.c sockdiag.c ws.c stomp.c
$(OUT)/unit-tests: tests/unit/test_units.c $(UNIT_SRCS:%.c=$(OUT)/san/%.o)
	$(call msg,LINK,$@)
	$(Q)$(CC) -O1 -g $(SAN) $(WARN) -std=gnu11 $(INCLUDES) $^ $(LIBS) -o $@

unit: $(OUT)/unit-tests
	$(Q)$(OUT)/unit-tests

test: deps
	$(Q)$(MAKE) --no-print-directory all $(OUT)/connscope-san $(OUT)/unit-tests
	$(Q)python3 tests/run.py

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
