# `make run`: install and start the app; `make test`: install the locked test environment (requirements.lock,
# plus Debian's chromium) into this Python and run every test; `make test-fast`: the edit loop (unit + API
# tests: no training subprocess, no browser, nothing marked slow); `make lock`: regenerate requirements.lock
# from requirements-dev.txt. `.ci/run` runs `make test` in a fresh virtual environment, as CI does.
.PHONY: run test test-only test-fast lock bench

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

lock:
	./scripts/lock.sh

bench:
	python bench/pair_generation.py
