# SPDX-License-Identifier: LGPL-2.1-or-later
# The two commands of the README, and their parts:
#   make run    install what is missing, build, run `vgpuctl doctor` and `vgpuctl list` on this host
#   make check  install what is missing, build, run every test (unit, ASan+UBSan, CLI, VM)
#   make deb    the Debian packages (debian/) in $(BUILD)/deb
BUILD ?= build
ASAN_BUILD ?= build-asan
VGPUCTL = $(BUILD)/src/vgpuctl/vgpuctl

.PHONY: run check deps test-deps build unit asan vm clean deb

run: deps build
	@echo "== vgpuctl doctor"; $(VGPUCTL) doctor || true
	@echo; echo "== vgpuctl list"; $(VGPUCTL) list

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

check: test-deps build
	@scripts/check.sh

unit: build
	meson test -C $(BUILD) --print-errorlogs

deb:
	scripts/build-deb.sh $(BUILD)/deb

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
