# Everything a fresh machine needs: Python 3.11+ and make. The first `make run` or
# `make test` creates .venv and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint migrate bench locales clean

$(STAMP): pyproject.toml examples/plugins/dice/pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The example plugin (its entry point), which the tests load as an owner would.
	$(BIN)/python -m pip install --quiet -e examples/plugins/dice
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m app

test: $(STAMP)
	$(BIN)/ruff check app tests bench alembic examples
	$(BIN)/ruff format --check app tests bench alembic examples
	$(BIN)/mypy
	# Three workers, each taking whole files (a file's tests share its Redis db and order):
	# the end-to-end tests mostly wait on bot processes, so this halves the run on 2 cores.
	$(BIN)/python -m pytest -n 3 --dist loadfile

migrate: $(STAMP)
	$(BIN)/python -m app migrate

bench: $(STAMP)
	$(BIN)/python bench/context.py
	$(BIN)/python bench/render.py
	$(BIN)/python bench/stream.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/tokens.py
	$(BIN)/python bench/media.py
	$(BIN)/python bench/tools.py

# Texts to translate: _() and its kin from aiogram.utils.i18n (gettext as _, lazy_gettext
# as __, ngettext; `_(singular, plural, n)` too), and N_() for texts translated when shown.
# tests/unit/test_i18n.py extracts with these same keywords.
BABEL_KEYWORDS := -k _ -k _:1,2,3t -k __ -k __:1,2,3t -k gettext -k gettext:1,2,3t \
	-k lazy_gettext -k lazy_gettext:1,2,3t -k ngettext:1,2 -k lazy_ngettext:1,2 -k N_
LOCALES := app/locales
POT := $(LOCALES)/messages.pot
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

# Re-extract every text from app/ into the Russian catalog: new texts arrive untranslated,
# changed ones fuzzy (with the previous text), removed ones are dropped. Then translate
# what is new or fuzzy in $(LOCALES)/ru/LC_MESSAGES/messages.po.
locales: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-default-keywords $(BABEL_KEYWORDS) \
		--add-comments=Translators: --add-location=file --sort-by-file \
		--project=TelegramBotAssistant --version=$(VERSION) -o $(POT) app
	$(BIN)/pybabel update -i $(POT) -d $(LOCALES) -D messages -l ru \
		--previous --ignore-obsolete --ignore-pot-creation-date
	rm -f $(POT)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
