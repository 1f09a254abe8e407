# Anju: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install fonts pgbackrest chromium nginx debootstrap demo test lint typecheck pytest mutate bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

# Contract PDFs need a Latin and a Chinese font: Debian packages, installed when we are root.
FONT_PKGS := fonts-dejavu-core fonts-droid-fallback
FONT_FILES := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf

fonts:
	@for f in $(FONT_FILES); do [ -f $$f ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -q $(FONT_PKGS) >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q $(FONT_PKGS) >/dev/null; }; \
	  else echo "contract PDFs need fonts: sudo apt-get install $(FONT_PKGS)"; fi; \
	fi

# Debian packages the tests drive, installed when we are root: $(call need,COMMAND,PACKAGES,WHY).
define need
	@if ! command -v $(1) >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -q $(2) >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q $(2) >/dev/null; }; \
	  else echo "$(3) needs: sudo apt-get install $(2)"; fi; \
	fi
endef

# The backup drill (tests/cloud/backup) runs pgBackRest against a private PostgreSQL cluster.
pgbackrest:
	$(call need,pgbackrest,pgbackrest,the PostgreSQL backup drill)

install: $(STAMP) fonts pgbackrest chromium nginx debootstrap

# The console's browser tests drive Debian's chromium (Playwright never downloads a browser).
chromium:
	$(call need,chromium,chromium chromium-driver,the console's browser tests)

# The HTTPS test runs nginx from the cloud role's site, with a test CA in chromium's NSS store.
nginx:
	$(call need,nginx,nginx,the console's HTTPS test)
	$(call need,certutil,libnss3-tools,the console's HTTPS test)

# The playbooks' proof (tests/test_ansible_root.py) builds a Debian 12 root with debootstrap and
# checks the units it installs with systemd-analyze.
debootstrap:
	$(call need,debootstrap,debootstrap,the playbooks' proof)
	$(call need,systemd-analyze,systemd,the playbooks' proof)

demo: install
	$(BIN)/anju demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# One worker per core; a file's tests stay on one worker (module fixtures, private brokers).
pytest: install
	$(BIN)/pytest -n auto --dist loadfile

test: lint typecheck pytest mutate

# Mutation testing of the pure rule modules ([tool.mutmut] in pyproject.toml): each mutant runs
# against the unit tests that reach it; fails when a file's tests kill under 90 % of its mutants
# (mutants that only reword an error or log message left out).
mutate: install
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/python tools/mutation_score.py

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache mutants
