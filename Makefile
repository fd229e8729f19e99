# InsurShare: `make demo` runs the platform end to end, `make test` runs the tests.
# Both bootstrap the environment from uv.lock.

SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_COMPILE_BYTECODE := 1
export INSURSHARE_HOME ?= $(CURDIR)/data
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --frozen --no-sync
INSURSHARE := $(RUN) insurshare
INDEX := $(INSURSHARE_HOME)/incoming/index.json

.PHONY: help sync demo test lint docs clean-data chromium bench bench-quick airflow stop

help:
	@echo "make demo    generate, submit and ingest five members' data through Airflow, then summarise"
	@echo "make test    lint, docs drift check and the test suite"
	@echo "make docs    regenerate README's command reference and data dictionary"
	@echo "make bench   InsurShare against the floor and GX on 10M-row files, marts at 100M rows (bench-quick: 1M), bulk submission of 1,000 small files, 1,000 small files submitted and ingested, the portal under load, many machines (1 and 2 Celery workers) and S3 against local disk"
	@echo "make airflow start a real Airflow and the portal on 127.0.0.1 and print their URLs and logins"
	@echo "make stop    stop the Airflow and the portal that make airflow started"

sync:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --quiet

demo: sync
	$(INSURSHARE) keygen --if-missing
	$(INSURSHARE) generate --members 5 --quarters 8 --seed 42
	$(INSURSHARE) members add --from-index $(INDEX)
	$(INSURSHARE) submit-index $(INDEX)
	$(INSURSHARE) run-dag ingest_submissions
	$(INSURSHARE) summary
	$(INSURSHARE) run-dag build_marts
	$(INSURSHARE) triangle --line MCOM --measure paid --as regulator
	$(INSURSHARE) run-dag build_products
	$(INSURSHARE) products show member:M001
	$(INSURSHARE) query --as member:M001 "SELECT period, line_of_business, members, earned_premium, \
	    loss_ratio, suppression FROM industry_experience WHERE grain = 'year' AND region_code = 'ALL' ORDER BY ALL"
	$(INSURSHARE) audit verify
	$(INSURSHARE) report

test: sync lint
	$(INSURSHARE) docs --check
	$(RUN) pytest -q

lint: sync
	$(RUN) ruff check pipelines dags tests benchmarks

docs: sync
	$(INSURSHARE) docs

bench: sync
	$(RUN) python -m benchmarks

bench-quick: sync
	$(RUN) python -m benchmarks --quick

airflow: sync
	$(INSURSHARE) keygen --if-missing
	$(INSURSHARE) airflow start

stop:
	$(INSURSHARE) airflow stop

chromium:
	bash scripts/install-chromium.sh

clean-data:
	rm -rf $(INSURSHARE_HOME)
