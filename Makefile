# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    := out/example

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): requirements.txt requirements-sandbox.txt requirements-dev.txt pyproject.toml
	@echo "Setting up $(VENV) (first run only: installs the dependencies, a few minutes)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

demo: $(STAMP)
	@mkdir -p $(OUT)
	$(BIN)/roles-anywhere plan --config Pulumi.example.yaml
	$(BIN)/roles-anywhere plan --config Pulumi.example.yaml --json > $(OUT)/plan.json
	$(BIN)/roles-anywhere render --config Pulumi.example.yaml --out $(OUT)
	@echo
	@echo "Results:"
	@echo "  the plan above (what 'pulumi up' would create for Pulumi.example.yaml)"
	@echo "  $(OUT)/plan.json (the same plan as JSON: resources, inputs, predicted ARNs, stack outputs)"
	@echo "  the files rendered into $(OUT)/ for the predicted ARNs, as 'pulumi up' writes them (start with README.md):"
	@cd $(OUT) && find . -path ./sandbox -prune -o -type f ! -name .roles-anywhere-files ! -name plan.json -print | sort | sed 's|^\./|    |'
	@echo
	@echo "Now the whole chain on this machine, in a local Roles Anywhere sandbox (results in $(OUT)/sandbox/):"
	$(BIN)/python -m roles_anywhere.sandbox.demo --config Pulumi.example.yaml --out $(OUT)/sandbox

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy roles_anywhere __main__.py

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/plan_scale.py
	$(BIN)/python benchmarks/render_scale.py
	$(BIN)/python benchmarks/simulate_scale.py
	$(BIN)/python benchmarks/apply_scale.py
	$(BIN)/python benchmarks/sandbox_sessions.py
	$(BIN)/python benchmarks/hostile_inputs.py

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
