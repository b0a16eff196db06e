# `make run`: install and start the app; `make test`: install test deps (incl. chromium) and run every test;
# `make test-fast`: the edit loop (unit + API tests: no training subprocess, no browser, nothing marked slow).
.PHONY: run test test-only test-fast bench

run:
	python -m pip install -r requirements.txt
	python app.py

test:
	./scripts/install-test-deps.sh
	python -m pytest

test-only:
	python -m pytest

test-fast:
	python -m pytest -m "not slow and not e2e and not gpu" -q

bench:
	python bench/pair_generation.py
