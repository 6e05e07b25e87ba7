# The two commands a newcomer needs:
#   make demo   install everything into .venv and run the main job (`course demo`)
#   make test   install everything into .venv and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test bench clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)

demo: setup
	$(VENV)/bin/course demo

# pytest exits 5 when it collects no tests: this project has tests, so that is a failure, said in one line.
test: setup
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (is tests/ present?)" >&2; exit 1; fi; \
	exit $$rc

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
