# abstract-autocomplete: the API, the built editor and the shipped int8 model in one image.
#   docker build -t abstract-autocomplete .
#   docker run --rm -p 8000:8000 abstract-autocomplete
# Stage 1 builds the front end with Node; stage 2 runs gunicorn on a slim Python with the
# serving dependencies only (no torch, no transformers: the engine needs onnxruntime alone).

FROM node:20-slim AS frontend
WORKDIR /src/frontend
# The lock file first, so the npm ci layer is reused until dependencies change.
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build


FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /app

# The app runs as an unprivileged user; code and model stay owned by root, so it cannot change them.
COPY requirements/serve.txt requirements/constraints.txt requirements/
RUN pip install --no-cache-dir -r requirements/serve.txt \
 && groupadd --system --gid 10001 autocomplete \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin autocomplete

COPY backend/ backend/
COPY models/arxiv-gpt2-6x512-bpe16k/ models/arxiv-gpt2-6x512-bpe16k/
COPY --from=frontend /src/frontend/dist/ frontend/dist/

USER 10001:10001
EXPOSE 8000

# python:slim has no curl; /health answers 200 once the model is loaded, 503 before.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]

# The same command as the Procfile (Elastic Beanstalk) and `make run`.
CMD ["gunicorn", "-c", "backend/gunicorn.conf.py", "backend:create_app()"]
