# The cryptoai prediction service (CPU). Build: docker build -t cryptoai-serve .
# Run:   docker run -p 8000:8000 -e MLFLOW_TRACKING_URI=http://mlflow:5000 \
#          -e CRYPTOAI_API_KEYS=... cryptoai-serve
# The model comes from the MLflow registry named by CRYPTOAI_MODEL (models:/NAME@ALIAS).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 cryptoai
WORKDIR /app

# Pinned dependencies first (a layer that changes only with the pins), CPU wheels for torch.
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt \
        --extra-index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY src ./src
COPY configs ./configs
RUN pip install --no-deps -e . && chown -R cryptoai:cryptoai /app

USER cryptoai
ENV CRYPTOAI_MODEL=models:/cryptoai@champion \
    CRYPTOAI_RATE_LIMIT=60/minute
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)" || exit 1
CMD ["sh", "-c", "exec cryptoai serve --model \"$CRYPTOAI_MODEL\" --host 0.0.0.0 --port 8000 --rate-limit \"$CRYPTOAI_RATE_LIMIT\""]
