.PHONY: test demo bench docs

# Everything the project checks (the README's test command).
test:
	bash scripts/test

demo:
	python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python -m demo

bench:
	.venv/bin/python bench/run.py

docs:
	.venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
