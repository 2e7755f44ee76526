# Lab fleet steps (tests/lab/README.md): simulated Xen dom0s in network namespaces, reached
# over SSH exactly like production. Included by the top Makefile (REPO, VENV, BIN, COLLECTIONS).
#   make demo        set up, bring up LAB_SPEC, run LAB_PLAYBOOK on it, print what happened, tear down
#   make lab-up      bring LAB_SPEC up (inventory: /run/noreboot-xen-lab/inventory.yml)
#   make lab-down    remove every lab namespace, process, link, mount and file
#   make lab-test    the lab's own tests (simulator contract, faults, up/down leaves nothing)
#   make lab-test-mitogen  the same with Mitogen's mitogen_linear strategy (not part of make test)
#   make lab-bench   200-host up time, memory and down time (printed, not asserted)
LAB_DIR := $(REPO)/tests/lab
LAB_SPEC ?= $(LAB_DIR)/fleets/rolling50.yml
LAB_PLAYBOOK ?= $(REPO)/playbooks/rolling_livepatch.yml
LAB_DEMO_ARGS ?= --lab-advisory
LAB_PLAYBOOK_ARGS ?=
LAB_PYTHON := $(BIN)/python

.PHONY: demo lab-up lab-down lab-status lab-test lab-test-mitogen lab-bench lab-need-root

lab-need-root:
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "The lab needs root: network namespaces, mounts and one sshd per simulated host."; \
	  echo "Run it as root, e.g.: sudo make $(MAKECMDGOALS)"; exit 1; fi

demo: lab-need-root setup
	$(LAB_PYTHON) $(LAB_DIR)/demo.py --spec $(LAB_SPEC) --playbook $(LAB_PLAYBOOK) $(LAB_DEMO_ARGS) -- $(LAB_PLAYBOOK_ARGS)

lab-up: lab-need-root setup
	$(LAB_PYTHON) $(LAB_DIR)/labctl.py up --spec $(LAB_SPEC)

lab-down: lab-need-root
	$(LAB_PYTHON) $(LAB_DIR)/labctl.py down

lab-status:
	$(LAB_PYTHON) $(LAB_DIR)/labctl.py status

# The rolling live patch's real-Xen test lives beside its lab twin but runs in testbed-test.
LAB_TESTS_RUN := $(PYTEST_STRICT) -q --durations=25 $(LAB_DIR)/tests --ignore=$(LAB_DIR)/tests/test_rolling_livepatch_real_xen.py
lab-test: lab-need-root setup
	$(LAB_TESTS_RUN)

# The same tests with Mitogen for Ansible's mitogen_linear strategy (issue 15: an accelerator is documented only
# if every lab test passes with it). Not part of make test. MITOGEN_LIB, MITOGEN_ENV and the install rule: the top Makefile.
lab-test-mitogen: lab-need-root setup $(MITOGEN_LIB)/.installed
	$(MITOGEN_ENV) $(LAB_TESTS_RUN)

lab-bench: lab-need-root setup
	$(LAB_PYTHON) $(LAB_DIR)/bench_fleet_scale.py --spec $(LAB_DIR)/fleets/scale200.yml --ansible
