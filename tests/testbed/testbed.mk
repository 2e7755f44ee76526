# Real Xen testbed (tests/testbed/README.md). Included by the top Makefile, which sets
# REPO, VENV, BIN, COLLECTIONS and exports ANSIBLE_COLLECTIONS_PATH.
#   make testbed-build   build or reuse the cached hypervisors, payloads, dom0 image, snapshots
#   make testbed-up      start xen4175 (Xen 4.17.5) and xen4177 (Xen 4.17.7); state in $(TESTBED_RUN_DIR)/hosts.json
#   make testbed-down    stop them, leaving no process, port or file
#   make testbed-test    molecule test -s xen, then pytest on the real hypervisors: the testbed's
#                        tests, the payload module four ways and payload swaps after the check
#                        (issue 13, same host), a payload carrying .note.Xen.signature verified and
#                        applied, a flipped signature byte refused before upload (issue 19),
#                        the ELF reader on the real payloads, the rolling
#                        live patch on real Xen, the reboot fallback through GRUB (apt installs
#                        4.17.7, guest saved, the controller killed during the reboot, the rerun
#                        restores the same guest: issue 14),
#                        and the simulator contract replayed with the real payloads just built
#   make testbed-reboot-fallback-test   only the reboot fallback through GRUB
#   make testbed-capture record transcripts into tests/fixtures/transcripts/
# The testbed needs root and apt-get (Debian 12). Elsewhere these targets fail loudly,
# unless NOREBOOT_XEN_SKIP_TESTBED=1 is set, which skips them with a notice.

.PHONY: testbed-preflight testbed-build testbed-up testbed-down testbed-status testbed-test testbed-capture testbed-reboot-fallback-test

TESTBED_DIR := $(REPO)/tests/testbed
TESTBED_CACHE := $(or $(NOREBOOT_XEN_TESTBED_CACHE),/var/cache/noreboot-xen-testbed)
TESTBED_RUN_DIR := $(TESTBED_CACHE)/run/default
# Exit status 3 from the preflight means "skip": the recipes below stop there with 0.
TESTBED_PREFLIGHT = python3 $(TESTBED_DIR)/preflight.py

testbed-preflight:
	@$(TESTBED_PREFLIGHT) || { rc=$$?; [ $$rc = 3 ] || exit $$rc; }

testbed-build:
	@$(TESTBED_PREFLIGHT) || { rc=$$?; [ $$rc = 3 ] && exit 0; exit $$rc; }; \
	python3 $(TESTBED_DIR)/build_testbed.py

testbed-up: testbed-build
	@$(TESTBED_PREFLIGHT) || { rc=$$?; [ $$rc = 3 ] && exit 0; exit $$rc; }; \
	python3 $(TESTBED_DIR)/hosts.py up --run-dir $(TESTBED_RUN_DIR)

testbed-down:
	@python3 $(TESTBED_DIR)/hosts.py down --run-dir $(TESTBED_RUN_DIR)

testbed-status:
	@python3 $(TESTBED_DIR)/hosts.py status --run-dir $(TESTBED_RUN_DIR)

# The GRUB image (grub_image.py build: 2-5 min once, cached) is built first: without it the
# reboot fallback test would skip, and a skip fails make test.
testbed-test: setup testbed-build
	@$(TESTBED_PREFLIGHT) || { rc=$$?; [ $$rc = 3 ] && exit 0; exit $$rc; }; \
	cd $(REPO) && start=$$(date +%s) && \
	python3 $(TESTBED_DIR)/grub_image.py build && \
	$(BIN)/molecule test -s xen && \
	NOREBOOT_XEN_REAL_TESTBED=1 $(PYTEST_STRICT) -q --durations=15 $(TESTBED_DIR) $(REPO)/tests/integration_real \
	  $(REPO)/tests/lab/tests/test_rolling_livepatch_real_xen.py && \
	NOREBOOT_XEN_CONTRACT_PAYLOADS=real $(PYTEST_STRICT) -q $(REPO)/tests/lab/tests/test_simulator_contract.py && \
	echo "testbed-test: passed in $$(( $$(date +%s) - start )) s"

# The reboot fallback through GRUB on a real host alone (about 7 min: two boots under TCG).
testbed-reboot-fallback-test: setup testbed-build
	@$(TESTBED_PREFLIGHT) || { rc=$$?; [ $$rc = 3 ] && exit 0; exit $$rc; }; \
	python3 $(TESTBED_DIR)/grub_image.py build && \
	$(PYTEST_STRICT) -q -s $(TESTBED_DIR)/test_reboot_fallback_real.py

testbed-capture: setup testbed-build
	@$(TESTBED_PREFLIGHT) || { rc=$$?; [ $$rc = 3 ] && exit 0; exit $$rc; }; \
	$(BIN)/python $(TESTBED_DIR)/capture_transcripts.py
