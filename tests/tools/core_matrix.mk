# The ansible-core matrix (README "Tested ansible-core and Python"): the unit tests and
# ansible-test sanity on the oldest and the newest ansible-core meta/runtime.yml admits, each in
# its own venv under .cache/core-matrix/ (requirements/core-<version>.txt). Included by the top
# Makefile; `make unit` / `make sanity` cover the main venv's core (requirements/test.txt).
.PHONY: core-matrix

core-matrix: setup
	tests/tools/core_matrix.sh
