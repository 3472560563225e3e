# exchops.kms — two commands do everything: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# The stages of the further ansible-core lines, which make test runs after the others (README,
# "ansible-core lines tested", says what each runs); each is also a target of its own.
LINE_STAGES := unit-2.16 integration-2.16 sanity-2.16 lines-2.17 lines-2.18

.PHONY: help setup demo demo-jump test bench format unit lab-test integration molecule sanity lint build-check changelog-lint lock clean $(LINE_STAGES)

help:
	@echo "make demo   set up .venv, start the lab, run the remediation, show the result"
	@echo "make demo-jump  the same behind a Windows jump host, the lab playing the operator at the console"
	@echo "make test   set up .venv, then run every test and check (ends with 'N passed, N failed')"
	@echo "make setup  only create/refresh .venv (pinned) and link this tree as exchops.kms"
	@echo "make bench  fleet benchmark (50 and 200 KB pairs, 100 behind a jump host): benchmarks/results/, last line ratio_vs_floor=..."

setup:
	@hacking/setup.sh

demo: setup
	@hacking/demo.sh

demo-jump: setup
	@hacking/demo-jump.sh

test: setup
	@$(VENV)/bin/python hacking/run_checks.py

# Not part of make test: timings are measured, never asserted. Takes about 5 minutes on 2 cores,
# and about 3 more for the run behind a jump host.
bench: setup
	@$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-bench.txt -c constraints.txt
	@$(VENV)/bin/python benchmarks/fleet.py

# Single stages, for working on one thing (make test runs them all, in this order).
unit: setup
	@$(VENV)/bin/python hacking/run_checks.py unit
lab-test: setup
	@$(VENV)/bin/python hacking/run_checks.py lab
integration: setup
	@$(VENV)/bin/python hacking/run_checks.py integration
molecule: setup
	@$(VENV)/bin/python hacking/run_checks.py molecule
sanity: setup
	@$(VENV)/bin/python hacking/run_checks.py sanity
lint: setup
	@$(VENV)/bin/python hacking/run_checks.py lint
build-check: setup
	@$(VENV)/bin/python hacking/run_checks.py build
changelog-lint: setup
	@$(VENV)/bin/python hacking/run_checks.py changelog

# The further ansible-core lines' stages (LINE_STAGES, above).
$(LINE_STAGES): setup
	@$(VENV)/bin/python hacking/run_checks.py $@

# Apply the formatting that make test checks (Black at 100 columns, isort; see pyproject.toml).
format: setup
	@$(VENV)/bin/black --quiet plugins tests hacking benchmarks
	@$(VENV)/bin/isort --quiet plugins tests hacking benchmarks

# The further ansible-core lines make test runs, each in .venv-LINE (the newest line runs in .venv).
LINES := 2.16 2.17 2.18

# Re-resolve constraints.txt from requirements-dev.txt in a scratch venv, and
# constraints/ansible-core-LINE.txt from requirements-line.txt with each line's newest ansible-core.
lock:
	@rm -rf .lock-venv && python3.11 -m venv .lock-venv \
	  && .lock-venv/bin/pip install --quiet -r requirements-dev.txt \
	  && { echo "# Full resolved dependency set for requirements-dev.txt (pip freeze of a fresh .venv)."; \
	       echo "# Regenerate: make lock"; .lock-venv/bin/pip freeze; } > constraints.txt \
	  && rm -rf .lock-venv && echo "constraints.txt updated"
	@for line in $(LINES); do hacking/lock_line.sh $$line || exit 1; done

clean:
	rm -rf $(VENV) $(LINES:%=$(VENV)-%) .ansible tests/output .pytest_cache .hypothesis
