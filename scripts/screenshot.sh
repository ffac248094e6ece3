#!/usr/bin/env bash
# The screenshot of the search page in docs/: the browser test, run on the real default model
# (MiniLM-L6 int8), saves the results page it sees.
set -euo pipefail
cd "$(dirname "$0")/.."
SBSEARCH_BROWSER_MODEL=minilm-int8 SBSEARCH_SCREENSHOT="$PWD/docs/serve-search.png" \
  .venv/bin/python -m pytest -q tests/test_browser.py
echo "wrote docs/serve-search.png"
