#!/usr/bin/env bash
# The main job on sample_docs/, from a fresh machine: set up; index the documents with the full
# model; make a 6-layer pruned model by the fast recovery path (hidden-state distillation toward the
# full model on 1,500 sentences of the documents being searched); index with it; compare it with the full model
# on the labelled questions of sample_docs/queries.jsonl; answer example questions with the quality footer,
# in hybrid mode (words and meaning), including an error code, a Japanese question and a filter.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
export SBSEARCH_INDEX=${SBSEARCH_INDEX:-indexes/sample_docs}
SB=.venv/bin/sbsearch
PRUNED=${PRUNED:-mpnet-pruned-6}
step() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }

step "indexing sample_docs/ with the full model (all-mpnet-base-v2, 12 layers)"
$SB index sample_docs --model full

if ! $SB models --json | grep -q "\"name\": \"$PRUNED\""; then
  step "pruning: keep 6 of 12 layers (evenly spread), recover by distilling every kept layer on the searched text"
  $SB prune --base full --layers 6 --strategy alternate --stages hidden --distil sample_docs --distil-split \
    --distil-limit "${DISTIL_LIMIT:-1500}" --max-length-cap 64 --eval none --no-compare --out "$PRUNED"
fi

step "indexing sample_docs/ with $PRUNED; it becomes the default search model"
$SB index sample_docs --model "$PRUNED" --set-default

step "comparing $PRUNED (A) with full (B) on the labelled questions of sample_docs/queries.jsonl"
$SB compare --a "$PRUNED" --b full --queries sample_docs/queries.jsonl --latency-queries 20 --throughput-chunks 64

step "asymmetric mode: queries by $PRUNED, documents by the full model"
$SB compare --a "$PRUNED@full" --b full --queries sample_docs/queries.jsonl --latency-queries 20 --throughput-chunks 64 --no-memory

step "example questions"
for q in "how much can I spend on dinner on a business trip" \
         "my vpn keeps dropping when I work from home" \
         "can I bring my work laptop to Japan"; do
  $SB query -k 3 "$q"
done

step "hybrid search (the default mode): a bare error code, a Japanese question, a filter"
$SB query -k 3 "E-4012"
$SB query -k 3 "通勤手当の申請方法"
$SB query -k 3 "what does a replacement battery cost" --folder support
step "done"
