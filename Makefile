# Porchlight: `make run` to try it, `make test` to check it. Both need only Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test lint format install demo clean screenshots bench bench-servers worker deploy-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --no-compile: pip would byte-compile every module of every package (most never imported;
# measured: 2.4 times the install's CPU); Python compiles the ones used on first import.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# `make run` writes the git-ignored .env (a generated SECRET_KEY, DEBUG=1, SITE_URL and
# ALLOWED_HOSTS of the address served) that settings read, so every `.venv/bin/python
# manage.py …` in another shell works as written and prints links to this server.
run: install
	@DEBUG=1 $(BIN)/python manage.py dev_env --host $(HOST) --port $(PORT) > $(VENV)/site-url
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py demo
	@echo
	@echo "Porchlight is at $$(cat $(VENV)/site-url)"
	@echo "  Sarah (customer):  $$($(BIN)/python manage.py login_link sarah@example.com)"
	@echo "  Luis (phone only): sign in at $$(cat $(VENV)/site-url)/login/ with (555) 555-0188;"
	@echo "                     the console SMS provider prints his 6-digit code in this log"
	@echo "  Mike (staff):      $$($(BIN)/python manage.py login_link mike)"
	@echo "                     or sign in at $$(cat $(VENV)/site-url)/staff/login/ as mike / porchlight-demo"
	@echo "  Kim (staff):       $$($(BIN)/python manage.py login_link kim)"
	@echo "                     or sign in at $$(cat $(VENV)/site-url)/staff/login/ as kim / porchlight-demo;"
	@echo "                     Daniel and Luis are hers (their texts email her; Sarah's go to Mike)"
	@echo "  Links work once, for 10 minutes; more from another shell:"
	@echo "    $(BIN)/python manage.py login_link EMAIL_OR_USERNAME"
	@echo "  Held notifications (quiet hours, the email delay) and the CRM's reminders and"
	@echo "  follow-ups go when 'make worker' runs in another shell."
	@echo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Runs the periodic work: notifications that wait (quiet hours, the email delay, retries) and
# the CRM automations (day-before reminders, follow-ups). With REDIS_URL: a Celery worker with
# the beat scheduler. Without (as under `make run`, where tasks run inline): every task of the
# same beat schedule, on its period, in one process.
worker: install
	@if [ -n "$$REDIS_URL" ]; then \
		DB_POOL=1 DB_POOL_MIN=8 DB_POOL_MAX=16 $(BIN)/celery -A portal worker --pool threads --concurrency 64 --beat --schedule $(VENV)/celerybeat-schedule --loglevel INFO; \
	else \
		$(BIN)/python manage.py periodic; \
	fi

# The suite runs in TEST_WORKERS processes (pytest-xdist), each with its own test database,
# Redis databases and ports (tests/conftest.py); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

test: export SECRET_KEY ?= test-only-not-secret
# Tests never read a developer's .env (make run writes one): they set what they need.
test: export PORCHLIGHT_ENV_FILE :=
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# pytest exits 5 when it collected no tests: that is a broken suite, not a pass.
	@$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$status

# The container deployment for real (deploy/test/run.sh): docker-compose.yml built and run as
# docs/operations.md says, proved through the proxy over HTTPS, backup, upgrade and faults
# rehearsed; leaves nothing running. As root: it may apt-get install docker.io, docker-compose,
# mmdebstrap and chromium, and start dockerd. 16 minutes warm, 26 from nothing (README.md).
deploy-test: install
	deploy/test/run.sh

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

screenshots: install
	$(BIN)/python docs/take_screenshots.py

# Benches need PostgreSQL and Redis (DATABASE_URL naming a database with "bench" in it, which
# they flush; REDIS_URL not index 0). Defaults: porchlight_bench on 127.0.0.1, Redis db 7.
bench: export SECRET_KEY ?= bench-only-not-secret
bench: export PORCHLIGHT_ENV_FILE :=
# Every bench (bench/all.py's list), tables written into docs/performance.md; BENCH_ARGS adds
# e.g. --before main (the same benches on that commit's code), --only pages,search, --quick.
bench: install
	$(BIN)/python -m bench.all $(BENCH_ARGS)

# The production ASGI server by measurement: daphne, uvicorn and granian, HTTP and WebSocket,
# in one run (about 5 minutes; docs/performance.md). Same database rules as `make bench`.
bench-servers: export SECRET_KEY ?= bench-only-not-secret
bench-servers: export PORCHLIGHT_ENV_FILE :=
bench-servers: install
	$(BIN)/python -m bench.servers

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache
