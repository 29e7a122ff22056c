# classhub: one entry point for the machine, the images, the stack and the tests.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PYTEST := $(VENV)/bin/pytest
RUFF   := $(VENV)/bin/ruff
DJLINT := $(VENV)/bin/djlint
NODE_BIN := node_modules/.bin
# the browser code: the services' scripts and style sheets (Prettier, ESLint) and the Jinja
# templates (djlint; ESLint also reads the inline scripts of the hub's templates)
WEB_FILES := "**/*.{js,mjs,cjs,css}"
TEMPLATES := hub/templates services common/web/templates
PYTEST_ARGS ?=
# The integration tier runs its test files on this many pytest-xdist workers (each file's
# deployment is its own: random ports, prefixed names); most of a test's time is spent
# waiting for containers and servers, so 2 workers fit 2 cores.
INTEGRATION_WORKERS ?= 2
# the throwaway deployment's tests on one worker, the files with a harness stack of their own on
# the other (tests/e2e/conftest.py groups them)
E2E_WORKERS ?= 2

# pytest exits 5 when a marker selects no test: a tier without tests yet is not a failure.
# $(2): where to collect (default: every test folder).
define run_tier
	@rc=0; $(PYTEST) -m "$(1)" $(2) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no $(1) tests collected"; rc=0; fi; exit $$rc
endef

.PHONY: help bootstrap images up down lint format docs checks labext-check test-unit test-hub test-integration test-integration-core test-integration-rest test-e2e test test-swarm bench images-core \
	backup backups restore restore-home

help:
	@echo "targets: bootstrap images up down backup backups restore restore-home lint format checks test-unit test-hub test-integration test-e2e test test-swarm bench"

bootstrap:            ## system packages, dockerd, .venv, node_modules (npm ci)
	bash scripts/bootstrap.sh

images: bootstrap     ## build every image (offline path when no registry answers)
	bash images/build.sh

# what most integration tests need: the student image and the homes helper
images-core: bootstrap
	bash images/build.sh singleuser homes-helper

up:                   ## the whole stack via docker-compose (runs bootstrap and images itself)
	bash scripts/up.sh

down:                 ## stop the stack and student containers; keeps all data
	bash scripts/down.sh

# Backups of the deployment `make up` made (scripts/backup.sh, docs/admin-guide.md "Backups and
# restores"): PostgreSQL, MongoDB, the S3 store and every student home into
# CLASSHUB_BACKUP_DIR (/var/backups/classhub), one folder per backup with a manifest of checksums.
# The student is STUDENT=..., or USER=... when given on the command line (the shell's own $USER
# is never taken for a student).
BACKUP ?=
ONLY ?=
SERVER ?=
QUOTA ?=
STUDENT ?= $(if $(filter command line,$(origin USER)),$(USER),)

backup:               ## back up everything; e.g. from cron: make -C /srv/classhub backup
	bash scripts/backup.sh backup $(if $(ONLY),--only $(ONLY),)

backups:              ## list the backups
	bash scripts/backup.sh list

restore:              ## make restore BACKUP=20261206T020000Z (or latest): the whole deployment
	@test -n "$(BACKUP)" || { echo "which backup? make restore BACKUP=<name>|latest (make backups lists them)" >&2; exit 2; }
	bash scripts/backup.sh restore "$(BACKUP)" $(if $(ONLY),--only $(ONLY),)

restore-home:         ## make restore-home USER=alice [SERVER=py101] BACKUP=latest: one home
	@test -n "$(STUDENT)" || { echo "whose home? make restore-home USER=<name> BACKUP=<name>|latest [SERVER=<class server>]" >&2; exit 2; }
	@test -n "$(BACKUP)" || { echo "which backup? make restore-home USER=$(STUDENT) BACKUP=<name>|latest (make backups lists them)" >&2; exit 2; }
	$(if $(QUOTA),CLASSHUB_RESTORE_QUOTA=$(QUOTA),) bash scripts/backup.sh restore-home "$(BACKUP)" \
	  --user "$(STUDENT)" $(if $(SERVER),--server "$(SERVER)",)

# Python (ruff), the layer contracts (import-linter, [tool.importlinter] in pyproject.toml:
# a wrong import fails here), JavaScript and CSS (ESLint, Prettier) and the Jinja templates
# (djlint)
lint: bootstrap
	$(RUFF) check .
	$(RUFF) format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(NODE_BIN)/eslint .
	$(NODE_BIN)/prettier --check $(WEB_FILES)
	$(DJLINT) --check $(TEMPLATES)
	$(DJLINT) --lint $(TEMPLATES)

# rewrite what the formatters own: Python, the scripts and style sheets, the templates
# (djlint --reformat exits 1 when it changed a file; the --check after it tells the truth)
format: bootstrap
	$(RUFF) format .
	$(NODE_BIN)/prettier --write --log-level warn $(WEB_FILES)
	$(DJLINT) --reformat --quiet $(TEMPLATES) || $(DJLINT) --check --quiet $(TEMPLATES)

# the admin guide's settings tables, generated from the traits (tests/unit/test_settings_doc.py
# fails when they are stale)
docs: bootstrap         ## regenerate the settings tables of docs/admin-guide.md
	$(VENV)/bin/python scripts/settingsdoc.py

test-unit: bootstrap
	$(call run_tier,unit)

# JupyterHub's MockHub with the production authenticator and in-process fakes (tests/hub):
# sign-in, sessions, roles and refresh_user in seconds, without Docker or any server
test-hub: bootstrap
	$(call run_tier,hub,tests/hub)

test-integration: bootstrap
	$(call run_tier,integration,-n $(INTEGRATION_WORKERS) --dist loadfile --durations=25)

# the integration tier in two parts, for `make test`: the tests that need only images-core
# (while the other images build), then those that need the rest (marker all_images)
test-integration-core: bootstrap
	$(call run_tier,integration and not all_images,-n $(INTEGRATION_WORKERS) --dist loadfile --durations=25)

test-integration-rest: images
	$(call run_tier,integration and all_images,-n $(INTEGRATION_WORKERS) --dist loadfile)

# ports of its own (harness.stack.free_port), apart from the integration tier's workers, which
# have the same xdist names, so that the two tiers can run at once. (Set here, for this tier's
# process only: every tier imports every conftest.py, so a conftest cannot set it.)
test-e2e: export CLASSHUB_TEST_PORTS_FROM = 26000
test-e2e: images
	$(call run_tier,e2e,-n $(E2E_WORKERS) --dist loadgroup --durations=10)

# The e2e tier starts a throwaway deployment of its own with scripts/up.sh (tests/e2e/throwaway.py):
# a stack that `make up` started is never restarted, changed or stopped.
# The student image and the homes helper build beside the checks that need no image (lint,
# unit, hub); then the other images beside the integration tests that need only those two;
# then the e2e tier beside the short rest of the integration tests (those that need the other
# images: about a minute). (The e2e tier beside the whole integration tier was tried: 5:44
# alone became 14:40 and the whole no faster, the 2 cores being the limit.) Each one's output
# is printed whole when it ends.
test:
	$(MAKE) bootstrap
	$(MAKE) -j2 --output-sync=target images-core checks
	$(MAKE) -j2 --output-sync=target images test-integration-core
	$(MAKE) -j2 --output-sync=target test-integration-rest test-e2e

checks: bootstrap     ## lint, then the unit and hub tiers (the tests that need no image)
	$(MAKE) lint
	$(MAKE) labext-check
	$(MAKE) test-unit
	$(MAKE) test-hub

# The JupyterLab extension's committed build is what a fresh, pinned build makes, byte for
# byte (images/labextension/build.sh --check: npm ci from package-lock.json, the builder and
# JupyterLab pinned; about 10 s)
labext-check: bootstrap
	bash images/labextension/build.sh --check

# A real three-node Docker Swarm on this machine (manager + 2 workers: one extra dockerd per
# network namespace, scripts/swarm/nodes.sh; the machine's own engine is never a node) and the
# Swarm spawner on it: spread, hardening, a drained worker's students moving with their homes;
# then the whole stack deployed by scripts/swarm/deploy.sh on a second such Swarm: sign-in,
# spawn on a worker, a kernel through Traefik. Not part of `make test` (it copies the images
# to the nodes' engines: 7.5 min on 2 cores). scripts/swarm/test.sh removes the nodes on any exit.
test-swarm: bootstrap images
	bash scripts/swarm/test.sh $(PYTEST_ARGS)

# The benchmark starts its own deployment on random ports (harness/stack.py); it needs the images.
bench: images         ## e.g. make bench BENCH_ARGS="--single 3 --concurrent 10"
	$(VENV)/bin/python bench/spawn_bench.py $(BENCH_ARGS)
