.PHONY: test demo bench docs

# Everything the project checks (the README's test command).
test:
	bash scripts/test

demo:
	python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/python -m demo

# All four cases, with express-session side by side where Node.js is present
# (about 4 minutes); options in BENCH_ARGS, e.g. make bench BENCH_ARGS=--quick
bench: .venv/bin/python
	.venv/bin/python bench/run.py $(BENCH_ARGS)

# The virtualenv as the README's test command makes it, if there is none yet.
.venv/bin/python:
	python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]"

docs:
	.venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
