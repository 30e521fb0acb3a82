# bakery: the two commands of the README are `make demo` and `make test`; the rest are their parts and CI helpers.
# Everything is idempotent and runs as root on a fresh Debian 12/13 machine.
SHELL := /bin/bash
PYTHON ?= python3
TAG ?= latest
export PATH := $(PATH):/usr/sbin:/sbin

.PHONY: demo test stack deps unit integration build release stitch doctor bench stop-stack

## demo: install and start the stack, then build the example images for linux/amd64, arm64 and arm/v7 and push them
demo: stack deps
	$(PYTHON) -m bakery setup
	$(PYTHON) -m bakery build --push --tag demo
	@echo
	@echo "Pushed to the local registry (one multi-arch index per image):"
	@for img in api worker static; do echo "  127.0.0.1:5000/acme/$$img:demo"; done
	@echo "Try: docker run --rm --platform linux/arm64 127.0.0.1:5000/acme/worker:demo"

## test: install and start the stack, then run every test (unit and real-stack integration)
test: stack deps
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest -q

## stack: Docker Engine (containerd store) + buildx, registry on 127.0.0.1:5000, QEMU, local base images
stack:
	bash .ci/stack.sh install
	bash .ci/stack.sh start

stop-stack:
	bash .ci/stack.sh stop

## deps: the package itself (editable) with its test dependencies
deps:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'

unit: deps
	$(PYTHON) -m pytest -q tests/unit

integration: stack deps
	$(PYTHON) -m pytest -q -m stack

doctor:
	$(PYTHON) -m bakery doctor

## bench: benchmark the example (empties the build cache: run it on a machine of its own)
bench: stack deps
	$(PYTHON) -m bakery bench --runs 3

SCOPE ?=
scope_flag = $(if $(SCOPE),--cache-scope '$(SCOPE)')

## build: CI build of every image and group, pushed and stitched under TAG (make build TAG=$CI_COMMIT_SHA SCOPE=$BRANCH)
build:
	$(PYTHON) -m bakery setup
	$(PYTHON) -m bakery build --push --tag $(TAG) $(scope_flag)

## release: smoke-tested release of VERSION (default: the semver tag on HEAD) with its whole tag set
release:
	$(PYTHON) -m bakery setup
	$(PYTHON) -m bakery release $(if $(VERSION),--version $(VERSION)) $(scope_flag)

## stitch: after fanned-out per-group CI jobs (make build TAG=x GROUP=arm ...), publish the indexes
stitch:
	$(PYTHON) -m bakery stitch --tag $(TAG)
