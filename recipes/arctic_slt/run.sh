#!/usr/bin/env bash
# CMU ARCTIC slt recipe: 0 download, 1 prepare, 2 train, 3 synthesize the eval split, 4 evaluate.
#
#   recipes/arctic_slt/run.sh [--stage N] [--stop-stage N] [--model lpcnet|wavenet|iaf|iaf_distill]
#                             [--recipe NAME] [--root DIR] [--exp DIR] [--cache DIR] [hydra overrides...]
#
# --root DIR uses a local corpus in the ARCTIC layout (stage 0 is then skipped); without it the slt
# release is downloaded into downloads/. Anything else is passed to vocoder-train as overrides, and
# the `data.*` overrides to vocoder-prepare too (the cache must match what training reads), e.g.
#   recipes/arctic_slt/run.sh --root ../shared/data/kathleen_arctic --model lpcnet trainer.max_steps=2000
# Each stage skips work already done: downloads and caches are verified, training resumes from its
# last checkpoint (and does nothing at max_steps), synthesis and scoring skip finished outputs.
set -euo pipefail

stage=0
stop_stage=4
model=lpcnet
recipe=""
root=""
exp=""
cache=""
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage="$2"; shift 2 ;;
    --stop-stage|--stop_stage) stop_stage="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --recipe) recipe="$2"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    --exp) exp="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) overrides+=("$1"); shift ;;
  esac
done

case "$model" in
  lpcnet) recipe="${recipe:-slt_lpcnet_small}" ;;
  wavenet) recipe="${recipe:-slt_wavenet}" ;;
  iaf) recipe="${recipe:-slt_iaf}" ;;
  iaf_distill) recipe="${recipe:-slt_iaf_distill}" ;;
  *) echo "run.sh: error: --model must be lpcnet, wavenet, iaf or iaf_distill (got $model)" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$repo/scripts/_env.sh"
cd "$repo"
if [ ! -f "configs/recipe/$recipe.yaml" ]; then
  echo "run.sh: error: no recipe $recipe (configs/recipe/); available: $(ls configs/recipe | sed 's/.yaml//' | tr '\n' ' ')" >&2
  exit 2
fi
exp="${exp:-exp/arctic_slt/$recipe}"
data=(data=slt)
if [ -n "$root" ]; then
  root="$(cd "$root" && pwd)"
  data+=("data.root=$root")
  cache="${cache:-cache/arctic_slt/$(basename "$root")}"
else
  cache="${cache:-cache/slt}"
fi
data+=("data.cache_dir=$cache")
for override in ${overrides[@]+"${overrides[@]}"}; do
  case "$override" in
    data.*|+data.*) data+=("$override") ;;
  esac
done
train_overrides=()
for override in ${overrides[@]+"${overrides[@]}"}; do
  case "$override" in
    data.*|+data.*) ;;
    *) train_overrides+=("$override") ;;
  esac
done

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  if [ -n "$root" ]; then
    echo "== stage 0: download skipped (--root $root)"
  else
    echo "== stage 0: download CMU ARCTIC slt"
    python -c "from vocoder.data import fetch_arctic; print(fetch_arctic('slt', 'downloads'))"
  fi
fi
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "== stage 1: prepare features -> $cache"
  vocoder-prepare "${data[@]}"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: train recipe=$recipe -> $exp"
  vocoder-train "recipe=$recipe" "${data[@]}" "trainer.out_dir=$exp" ${train_overrides[@]+"${train_overrides[@]}"}
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: synthesize the eval split -> $exp/synth"
  if [ -f "$exp/synth/synthesis.json" ] && [ "$exp/synth/synthesis.json" -nt "$exp/checkpoints/last.pt" ]; then
    echo "   up to date (delete $exp/synth to redo)"
  else
    vocoder-synth "checkpoint=$exp/checkpoints/last.pt" "input=$cache" split=eval \
      "output_dir=$exp/synth" "reference_dir=$exp/natural"
  fi
fi
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  echo "== stage 4: evaluate -> $exp/report"
  if [ -f "$exp/report/summary.md" ] && [ "$exp/report/summary.md" -nt "$exp/synth/synthesis.json" ]; then
    echo "   up to date (delete $exp/report to redo)"
    cat "$exp/report/summary.md"
  else
    vocoder-eval "ref=$exp/natural" "hyp=$exp/synth" "output_dir=$exp/report" anchors=true
  fi
  if [ -f "$exp/report/index.html" ]; then
    echo "listening page (open it in a browser): $exp/report/index.html"
  fi
fi
