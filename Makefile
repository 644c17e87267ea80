# Signalbox: `make run` to try it, `make test` to test it. Both work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Test processes for `make test` (pytest-xdist, a test file's tests stay together); 0 runs in this one.
TEST_WORKERS ?= 2
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run prod test install install-dev assets npm chromium fonts messages bench clean help

help:
	@echo "make run    - install, migrate, load demo data, serve http://$(HOST):$(PORT) with a task worker"
	@echo "make prod   - production profile: DEBUG=0, PostgreSQL + Redis, uvicorn and RQ workers, scheduler"
	@echo "make test   - install test dependencies and run the whole suite (SQLite, Chromium)"
	@echo "make bench NAME=unread_count - run one benchmark"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(PY)
	$(BIN)/pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(PY)
	$(BIN)/pip install -q -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# Browser assets pinned in package.json + package-lock.json (plotly.js's basic bundle, served from
# our static files by config/storage.py): `npm ci`, no install scripts, nothing fetched at run time.
assets: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json | npm
	@if command -v npm >/dev/null; then \
		npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "Without npm the analytics charts stay empty: sudo apt-get install -y nodejs npm"; \
	fi

# Debian's nodejs and npm: installed when missing and we are root.
npm:
	@if command -v npm >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's nodejs and npm for the static assets..."; \
		(apt-get install -y -qq nodejs npm >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null)); \
	fi

# Local development settings; real environment variables override them.
.env:
	@printf 'DEBUG=1\n' > .env
	@echo "Wrote .env (DEBUG=1). Edit it or set environment variables to configure Signalbox."

# Migrate, demo data (prints the logins), collectstatic, then uvicorn + task worker + scheduler as
# one unit that Ctrl-C stops (config/serve.py).
run: install assets .env fonts
	$(PY) -m config.serve run --host $(HOST) --port $(PORT)

# The production profile on this machine (README "Deploying"): DEBUG=0, PostgreSQL and Redis from
# DATABASE_URL/REDIS_URL, WEB_WORKERS uvicorn workers, RQ_WORKERS RQ workers and the scheduler.
prod: install assets fonts
	$(PY) -m config.serve prod --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests: installed when missing and we are root.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the browser tests..."; \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)) ; \
	else \
		echo "Browser tests need Chromium: sudo apt-get install -y chromium"; \
	fi

# Noto CJK for PDF reports with Chinese text (WeasyPrint and matplotlib find it through fontconfig).
fonts:
	@if fc-list 2>/dev/null | grep -q "Noto Sans CJK SC"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's fonts-noto-cjk for PDF reports..."; \
		(apt-get install -y -qq fonts-noto-cjk >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null)); \
	else \
		echo "PDF reports need a CJK font for Chinese text: sudo apt-get install -y fonts-noto-cjk"; \
	fi

test: install-dev assets chromium fonts
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

messages: install
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=staticfiles --no-obsolete
	$(PY) manage.py compilemessages --ignore=.venv

bench: install-dev assets chromium
	$(PY) -m bench $(NAME)

clean:
	rm -rf var/test*.sqlite3* staticfiles .pytest_cache
