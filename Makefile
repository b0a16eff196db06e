# `make run`: install and start the app; `make test`: install test deps (incl. chromium) and run every test.
.PHONY: run test test-only bench

run:
	python -m pip install -r requirements.txt
	python app.py

test:
	./scripts/install-test-deps.sh
	python -m pytest

test-only:
	python -m pytest

bench:
	python bench/pair_generation.py
