# bakery: the two commands of the README are `make demo` and `make test`; the rest are their parts and CI helpers.
# Everything is idempotent and runs as root on a fresh Debian 12/13 machine.
SHELL := /bin/bash
PYTHON ?= python3
TAG ?= latest
export PATH := $(PATH):/usr/sbin:/sbin

.PHONY: demo test test-stable test-current stack deps unit integration build release stitch doctor bench stop-stack

## demo: install and start the stack, then build the example images for linux/amd64, arm64 and arm/v7 and push them
demo: stack deps
	$(PYTHON) -m bakery setup
	$(PYTHON) -m bakery build --push --tag demo
	@echo
	@echo "Pushed to the local registry (one multi-arch index per image):"
	@for img in api worker static; do echo "  127.0.0.1:5000/acme/$$img:demo"; done
	@echo "Try: docker run --rm --platform linux/arm64 127.0.0.1:5000/acme/worker:demo"

## test: install and start both stacks, then run every test (unit and real-stack integration) on the stable
## stack and then on the current one (always both), one summary line per stack; fails if either run failed
test: stack deps
	$(PYTHON) -m mypy
	@rc=0; for s in $(STACKS); do $(call suite,$$s) || rc=1; done; \
	echo; for s in $(STACKS); do cat $(TEST_OUT)-$$s.summary; done; exit $$rc

## test-stable, test-current: the whole suite on one stack (BAKERY_STACK=stable|current, see docs/stack.md)
test-stable test-current: test-%: stack deps
	@$(call suite,$*); rc=$$?; cat $(TEST_OUT)-$*.summary; exit $$rc

STACKS := stable current
PYTEST_ARGS ?=
TEST_OUT ?= /tmp/bakery-test
# suite STACK: pytest on one stack, its output teed to $(TEST_OUT)-STACK.log (junit xml beside it), and one line
# "STACK (Docker X, buildx Y): <pytest's final line>" written to $(TEST_OUT)-STACK.summary; the status is pytest's
# (any non-zero, e.g. 5 for no tests collected, fails)
suite = s=$(1); log=$(TEST_OUT)-$$s.log; \
	echo "=== pytest on the $$s stack ($$(bash .ci/stack.sh versions $$s))"; \
	( eval "$$(bash .ci/stack.sh env $$s)" && exec $(PYTHON) -m pytest -q -p no:cacheprovider \
	    --junitxml=$(TEST_OUT)-$$s.xml $(PYTEST_ARGS) ) 2>&1 | tee $$log; st=$${PIPESTATUS[0]}; \
	last=$$(grep -E '^(=+ )?(([0-9]+ [a-z]+(, )?)+|no tests ran).* in [0-9.]+s' $$log | tail -n1 | sed -E 's/^=+ //; s/ =+$$//'); \
	echo "$$s ($$(bash .ci/stack.sh versions $$s)): $${last:-no pytest summary line}$$( [ $$st = 0 ] || echo " -- FAILED (pytest exit $$st)")" \
	  >$(TEST_OUT)-$$s.summary; \
	[ $$st = 0 ]

## stack: both stacks (stable: Debian's Docker 26.1 + buildx 0.13; current: sid's Docker 28.5 + buildx 0.29), each
## with the containerd store; registry on 127.0.0.1:5000, QEMU, local base images (docs/stack.md)
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
