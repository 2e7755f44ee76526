# noreboot.xen: the two commands of README.md, and the steps they are made of.
#   make test   set up, then run every test (CI runs exactly this through .ci/run)
#   make demo   set up, bring up the lab fleet, run the main job on it, tear it down
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
REPO := $(CURDIR)
VENV := $(REPO)/.venv
BIN := $(VENV)/bin
COLLECTIONS := $(REPO)/.cache/collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export PYTHONPATH := $(COLLECTIONS)
export PATH := $(BIN):$(PATH)

.PHONY: test demo setup venv apt collections-path unit sanity lint galaxy-smoke ee-check changelog-lint clean bench-plan awx-config bench testbed-test-mitogen

# Two lanes at once after setup (tests/tools/run_two_lanes.sh): the real Xen hypervisors under QEMU
# (the testbed's cold build on first use, cached; Molecule; pytest) in the background, its output
# printed whole when it ends; the cheap checks, then the lab fleet (simulated hosts over SSH), here.
CHECK_STEPS := unit sanity core-matrix lint changelog-lint docs-lint docs galaxy-smoke ee-check lab-test
test: setup
	@tests/tools/run_two_lanes.sh $(REPO)/.cache/make-test/testbed-test.log \
	  testbed-test "$(MAKE) --no-print-directory testbed-test" \
	  "checks and lab" "$(MAKE) --no-print-directory $(CHECK_STEPS)"
	@echo "make test: all steps passed in $$(( $$(date +%s) - $(TEST_STARTED) )) s"

TEST_STARTED := $(shell date +%s)
# pytest that counts only tests that ran: a skipped test fails the step (tests/tools/pytest_no_skips.py).
PYTEST_STRICT := $(BIN)/python $(REPO)/tests/tools/pytest_no_skips.py

setup: apt venv collections-path

# Debian packages the tests need, installed only where we are root and have apt; ansible-test
# wants the en_US.UTF-8 locale (else it warns and falls back to C.UTF-8); chromium opens the HTML
# reports headless in the lab test (tests/lab/tests/test_run_report_html_lab.py); minisign signs the
# test advisory directories of tests/support/minisign_signing.py.
APT_PACKAGES := git rsync openssh-client openssh-server iproute2 procps shellcheck locales chromium minisign
apt:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	  locale -a | grep -qix 'en_US.utf8' || localedef -i en_US -c -f UTF-8 en_US.UTF-8; \
	else echo "setup: not root or no apt-get: Debian packages ($(APT_PACKAGES)) must already be installed"; fi

venv: $(VENV)/.installed
$(VENV)/.installed: requirements/test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements/test.txt
	touch $@

# Ansible finds noreboot.xen.* only under <path>/ansible_collections/noreboot/xen.
collections-path:
	@mkdir -p $(COLLECTIONS)/ansible_collections/noreboot
	@ln -sfn $(REPO) $(COLLECTIONS)/ansible_collections/noreboot/xen

unit: setup
	$(PYTEST_STRICT) -q tests/unit

sanity: setup
	tests/tools/run_sanity.sh

lint: setup
	env -u ANSIBLE_COLLECTIONS_SCAN_SYS_PATH $(BIN)/ansible-lint --offline --profile production

changelog-lint: setup
	$(BIN)/antsibull-changelog lint

galaxy-smoke: setup
	tests/tools/galaxy_build_install_smoke.sh

# The execution environment: `ansible-builder create` from the built tarball, offline, and
# `ansible-builder introspect` of the installed tarball against the declared deps (tests/ee).
ee-check: setup
	$(PYTEST_STRICT) -q tests/ee

# The AWX configuration as code (docs/examples/awx/), surveys from playbooks/vars/argument_specs.yml; `make unit` checks
# that the checked-in files are its output (tests/unit/tools/test_awx_configuration.py).
awx-config: setup
	$(BIN)/python tests/tools/awx_configuration.py

# How the plan and the gates cost grows: 1000, 5000 and 20000 synthetic hosts, no SSH (tests/bench/bench_plan_scale.py).
# Prints figures, asserts nothing; not part of make test.
bench-plan: setup
	$(BIN)/python tests/bench/bench_plan_scale.py

# The rolling live patch side by side with the playbook an operator would otherwise write and with
# Ansible's floor, on 200 lab hosts; then this collection's run alone on the 1000-host fleet with a 1 %
# failure budget (tests/bench/bench_rollout_vs_naive.py). Not part of make test; needs root (the lab).
# Each runs twice: with Ansible's linear strategy, then with Mitogen's mitogen_linear (requirements/bench.txt,
# installed in .cache/mitogen).
BENCH_1000_VARS := {"noreboot_xen_failure_budget_percent": 1}
MITOGEN_LIB := $(REPO)/.cache/mitogen
# What README.md's ansible.cfg lines for Mitogen set, as environment (the lab's and the testbed's inventories carry
# their own known_hosts options, which Mitogen does not read: host key checking off, for them only). The strategy
# plugin puts ansible_mitogen on its own path.
MITOGEN_ENV := ANSIBLE_STRATEGY_PLUGINS=$(MITOGEN_LIB)/ansible_mitogen/plugins/strategy ANSIBLE_STRATEGY=mitogen_linear \
  ANSIBLE_HOST_KEY_CHECKING=False
bench: setup $(MITOGEN_LIB)/.installed
	for strategy in linear mitogen; do \
	  $(BIN)/python tests/bench/bench_rollout_vs_naive.py --strategy $$strategy --mitogen-lib $(MITOGEN_LIB) \
	    --spec tests/lab/fleets/bench200.yml; \
	  $(BIN)/python tests/bench/bench_rollout_vs_naive.py --strategy $$strategy --mitogen-lib $(MITOGEN_LIB) \
	    --spec tests/lab/fleets/scale1000.yml --only ours --extra-vars '$(BENCH_1000_VARS)'; \
	done
# make testbed-test with Mitogen (issue 15: an accelerator is documented only if every lab and testbed test passes
# with it; the lab's half: make lab-test-mitogen). Not part of make test.
testbed-test-mitogen: setup $(MITOGEN_LIB)/.installed
	$(MITOGEN_ENV) $(MAKE) --no-print-directory testbed-test
$(MITOGEN_LIB)/.installed: requirements/bench.txt
	$(BIN)/pip install -q --disable-pip-version-check --target $(MITOGEN_LIB) -r requirements/bench.txt
	touch $@

clean:
	rm -rf $(VENV) .cache tests/output noreboot-xen-*.tar.gz dist context

# Step groups owned by their own parts of the tree.
-include tests/testbed/testbed.mk
-include tests/lab/lab.mk
include docs/docs.mk
-include tests/tools/core_matrix.mk
