# `make run`: install and start the dev server on embedded SQLite.
# `make test`: install the test tools and run the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint serve bench mysql-driver clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# The C MySQL/MariaDB driver for production (needs a C compiler, libmariadb-dev and pkg-config).
mysql-driver: $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-mysql.txt

run: $(VENV)/.installed
	$(BIN)/python main.py

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

serve: $(VENV)/.installed
	$(BIN)/gunicorn --config gunicorn.conf.py main:app

clean:
	rm -rf $(VENV) instance
