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

# The docs (the README's docs command), with warnings as errors.  Works
# right after the demo command: it makes .venv if there is none, and
# installs Sphinx (the "docs" extra) into it when it is missing.
docs:
	@test -x .venv/bin/python || python3 -m venv .venv
	@.venv/bin/python -c "import sphinx, tornado_sessions.stores.mysql" 2>/dev/null \
		|| { echo "docs: installing Sphinx into .venv (pip install -e '.[docs]')"; \
		     .venv/bin/pip install -q -e ".[docs]"; }
	.venv/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: built docs/_build/html/index.html"
