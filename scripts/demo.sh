#!/usr/bin/env bash
# The main job on sample_docs/, from a fresh machine: set up, index, answer example questions,
# compare the search model against the full model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SBSEARCH_INDEX=${SBSEARCH_INDEX:-indexes/sample_docs}
SB=.venv/bin/sbsearch
SEARCH_MODEL=${SEARCH_MODEL:-minilm}

echo "== indexing sample_docs/ with $SEARCH_MODEL and with the full model"
$SB index sample_docs --model "$SEARCH_MODEL"
$SB index sample_docs --model full

echo "== comparing $SEARCH_MODEL (A) with full (B) on the 115 labelled questions"
$SB compare --a "$SEARCH_MODEL" --b full --queries sample_docs/queries.jsonl

echo "== example questions"
for q in "how much can I spend on dinner on a business trip" \
         "my vpn keeps dropping when I work from home" \
         "can I bring my work laptop to Japan"; do
  $SB query --model "$SEARCH_MODEL" -k 3 "$q"
done
$SB status
