# hunyuan — build, demo, test, bench. The README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := build

SWIFT ?= swift
PYTHON ?= python3
HUNYUAN_SHARED ?= $(abspath ../shared)
export HUNYUAN_SHARED

BUILD := build
VENV := .venv
PY := $(VENV)/bin/python
CC ?= gcc
CXX ?= g++

# The shipped library: Swift runtime linked statically (no toolchain needed at run time), only hy_*
# exported under version node hy_abi_0, SONAME libhunyuan.so.0. GNU ld (bfd) keeps the dynamic
# symbol table free of local Swift entries.
# RPATH $ORIGIN/libs (DT_RPATH, which also serves the libraries it loads) finds the copies of
# OpenBLAS and its Fortran runtime that the Python wheel bundles; elsewhere the system's are used.
RELEASE_FLAGS := -c release -Xswiftc -static-stdlib -Xswiftc -use-ld=bfd \
	-Xlinker --version-script=$(CURDIR)/tools/hunyuan.map -Xlinker -soname=libhunyuan.so.0 \
	-Xlinker --disable-new-dtags -Xlinker '-rpath=$$ORIGIN/libs'


APT_PACKAGES := libopenblas-dev zlib1g-dev libjpeg-dev pkg-config libffi-dev libpython3-dev binutils
CFLAGS_TEST := -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude

.PHONY: test-examples blender-extension python-install deps deps-apt build demo test bench clean test-swift test-capi test-python check-library

# ---- dependencies -----------------------------------------------------------------------------
# Debian packages (installed when root, otherwise a clear message) and a project venv for the
# test-only Python packages.
deps: deps-apt $(VENV)/.stamp

deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing -- as root run: apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

$(VENV)/.stamp: tools/requirements-test.txt | deps-apt
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required for the tests" >&2; exit 1; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV) || { echo "cannot create $(VENV): apt-get install python3-venv" >&2; exit 1; }
	$(PY) -m pip install -q --disable-pip-version-check -r tools/requirements-test.txt
	@touch $@

# ---- build ------------------------------------------------------------------------------------
build: deps-apt
	$(SWIFT) build $(RELEASE_FLAGS) --product hunyuan
	$(SWIFT) build $(RELEASE_FLAGS) --product hunyuan-cli
	@mkdir -p $(BUILD)
	cp --remove-destination .build/release/libhunyuan.so $(BUILD)/libhunyuan.so.0
	strip --strip-unneeded $(BUILD)/libhunyuan.so.0
	ln -sf libhunyuan.so.0 $(BUILD)/libhunyuan.so
	cp --remove-destination .build/release/hunyuan-cli $(BUILD)/hunyuan-cli
	rm -rf $(BUILD)/models && cp -r models $(BUILD)/models
	@echo "built $(BUILD)/libhunyuan.so.0 and $(BUILD)/hunyuan-cli"

# ---- demo -------------------------------------------------------------------------------------
demo: build python-install
	@bash tools/demo.sh

# ---- tests ------------------------------------------------------------------------------------
test: deps build check-library test-capi test-swift test-python test-examples
	@echo "make test: all suites passed"

check-library: build
	@bash tools/check_library.sh $(BUILD)/libhunyuan.so.0 include/hunyuan.h Tests/capi

test-capi: build
	$(CC) $(CFLAGS_TEST) -fsyntax-only -x c include/hunyuan.h
	$(CXX) -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -fsyntax-only -x c++ include/hunyuan.h
	@mkdir -p $(BUILD)/capi
	@rm -rf $(BUILD)/capi/scratch
	@set -e; for t in Tests/capi/test_*.c; do \
	  n=$$(basename $$t .c); \
	  $(CC) $(CFLAGS_TEST) -pthread -o $(BUILD)/capi/$$n $$t -ldl -lm; \
	  $(BUILD)/capi/$$n $(BUILD)/libhunyuan.so.0 $(HUNYUAN_SHARED) $(BUILD)/capi/scratch; \
	done
	@set -e; for e in examples/c/*.c; do \
	  n=$$(basename $$e .c); \
	  $(CC) -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude -o $(BUILD)/capi/example_$$n $$e -ldl; \
	  $(BUILD)/capi/example_$$n $(BUILD)/libhunyuan.so.0 $(HUNYUAN_SHARED); \
	done

test-swift: deps
	$(PY) tools/make_safetensors_cases.py $(BUILD)/testdata/safetensors
	HUNYUAN_TESTDATA=$(CURDIR)/$(BUILD)/testdata $(SWIFT) test

# The binding is installed into the project venv the way users install it (pip builds the
# extension and bundles the library), then tested from outside the source tree.
python-install: deps build
	$(PY) -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./bindings/python

test-python: python-install
	HUNYUAN_CLI=$(CURDIR)/$(BUILD)/hunyuan-cli HUNYUAN_LIB=$(CURDIR)/$(BUILD)/libhunyuan.so.0 \
	  $(PY) -m pytest -q -p no:cacheprovider Tests/python Tests/cli Tests/capi Tests/blender

# The Python and Blender examples, run as a user would (from outside the source tree).
test-examples: python-install
	cd $(BUILD) && ../$(PY) ../examples/python/mesh_from_sdf.py examples-out
	cd $(BUILD) && ../$(PY) ../examples/python/generate.py $(HUNYUAN_SHARED)/fixtures/lm/hunyuan-a13b-tiny
	cd $(BUILD) && ../$(PY) ../examples/blender/import_generated_mesh.py examples-out

# The Blender extension package (manifest + add-on + the abi3 wheel) in build/.
blender-extension: python-install
	rm -rf $(BUILD)/wheel && $(PY) -m pip wheel -q --no-deps -w $(BUILD)/wheel ./bindings/python
	rm -rf bindings/blender/hunyuan_blender/wheels && mkdir -p bindings/blender/hunyuan_blender/wheels
	cp $(BUILD)/wheel/*.whl bindings/blender/hunyuan_blender/wheels/
	rm -rf bindings/blender/hunyuan_blender/__pycache__ $(BUILD)/hunyuan_blender.zip
	cd bindings/blender/hunyuan_blender && ../../../$(PY) -m zipfile -c ../../../$(BUILD)/hunyuan_blender.zip \
	  blender_manifest.toml __init__.py importer.py panel.py wheels
	@echo "built $(BUILD)/hunyuan_blender.zip (Blender: Edit > Preferences > Get Extensions > Install from Disk)"

# ---- benchmarks -------------------------------------------------------------------------------
bench: build
	@bash tools/bench.sh

clean:
	rm -rf .build $(BUILD)
