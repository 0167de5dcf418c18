# vfio-stack: the modern VFIO/iommufd stack as a patch series on QEMU 7.2.
# Build outputs go to $(VFIO_STACK_BUILD) (default: build/ in this repo).
SHELL := /bin/bash
export VFIO_STACK_BUILD ?= $(CURDIR)/build
B := $(VFIO_STACK_BUILD)

.PHONY: all help deps setup build build-ppc check checkpatch status demo export bisect clean bench bench-logsync

all: build

help:
	@echo "make deps       install the Debian packages needed (root)"
	@echo "make setup      (re)create $(B)/src: QEMU 7.2 base + headers + series/"
	@echo "make build      build $(B)/obj/qemu-system-x86_64 (sets up the tree if needed)"
	@echo "make build-ppc  also build $(B)/obj-ppc64/qemu-system-ppc64"
	@echo "make check      everything: deps, setup, build, checkpatch, qtests, model/, e2e/"
	@echo "make demo       show what the built QEMU offers (e2e/demo when present)"
	@echo "make bench      time guest-RAM pinning at VM start (bench/run; not part of check)"
	@echo "make bench-logsync  time a dirty-page sync round of a 64 GiB guest, ours vs QEMU 10.0 (bench/logsync)"
	@echo "make status     does $(B)/src have work that series/ lacks?"
	@echo "make export     write the commits of $(B)/src back to series/"
	@echo "make bisect     build every patch of the series in turn"
	@echo "make clean      remove build directories and logs (keeps $(B)/src)"

deps:
	tools/deps

setup: deps
	tools/series setup

build: deps
	tools/series ensure
	tools/series build

build-ppc: deps
	tools/series ensure
	tools/series build --ppc

check:
	tools/check

checkpatch:
	tools/series checkpatch

# A benchmark, not a test (bench/README.md); BENCH_* and E2E_MEM tune it.
bench:
	bench/run

# Also a benchmark: dirty-page sync rounds under the model, on the host (LOGSYNC_* tune it).
bench-logsync:
	bench/logsync

status:
	tools/series status

demo: deps
	@echo "demo: setting up and building QEMU (log: $(B)/logs/demo-build.log) ..."
	@mkdir -p "$(B)/logs"
	@{ tools/series ensure && tools/series build; } >"$(B)/logs/demo-build.log" 2>&1 || \
	    { tail -30 "$(B)/logs/demo-build.log"; exit 1; }
	@export QEMU="$${QEMU:-$(B)/obj/qemu-system-x86_64}"; \
	    if [ -e e2e/demo ]; then bash e2e/demo; else tools/demo; fi

export:
	tools/series export

bisect: deps
	tools/series bisect

clean:
	rm -rf "$(B)/obj" "$(B)/obj-asan" "$(B)/obj-ppc64" "$(B)/obj-bisect" "$(B)/obj-bisect-ppc64" \
	       "$(B)/logs" "$(B)/checkpatch.pl" "$(B)"/.trash.*
	@if [ -d "$(B)/bisect-src" ]; then \
	    git -C "$(B)/src" worktree remove --force "$(B)/bisect-src" 2>/dev/null || rm -rf "$(B)/bisect-src"; fi
