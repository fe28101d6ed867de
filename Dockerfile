FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    RAG_HOME=/var/lib/rag \
    HF_HUB_OFFLINE=1

# Tesseract reads scanned PDF pages (ingest/readers/ocr.py); without it they fail with what to install.
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY store ./store
COPY llm ./llm
COPY monitoring ./monitoring
COPY ingest ./ingest
COPY retrieval ./retrieval
COPY answer ./answer
COPY evaluation ./evaluation
COPY rag ./rag
# PIP_EXTRA_INDEX_URL may point pip at a CPU-only torch build to keep the image small.
ARG PIP_EXTRA_INDEX_URL=
RUN pip install ".[providers,auth]"
COPY app.py ./
COPY pages ./pages
COPY data ./data
COPY .streamlit ./.streamlit

VOLUME ["/var/lib/rag"]
EXPOSE 8501
# One port for the web app, the REST API (/api/v1, /v1), /health, /ready and /metrics. Without
# RAG_API_KEYS the API answers only requests from inside the container; /health is always open.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/health', timeout=4).status == 200 else 1)"
CMD ["rag", "serve", "--address", "0.0.0.0", "--port", "8501"]
