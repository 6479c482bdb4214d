#!/usr/bin/env bash
# Your own voice in one command: 1 prepare, 2 fine-tune the packaged LPCNet on it, 3 synthesize the eval
# split, 4 report (scores against the recordings, with WORLD / Griffin-Lim / 8-bit mu-law anchors).
#
#   recipes/own_voice/run.sh --root DIR [--layout auto|arctic|folder|ljspeech|vctk|libritts|filelist]
#                            [--steps N] [--init CHECKPOINT|pretrained:NAME] [--no-anchors]
#                            [--stage N] [--stop-stage N] [--exp DIR] [--cache DIR] [hydra overrides...]
#
# --root is a folder of recordings in any layout (wav/flac/ogg/mp3 at any rate, any depth of subfolders;
# the layout found is printed) or a file list (one PATH or PATH|SPEAKER a line). LPCNet is xiph's 16 kHz
# model: the recordings are resampled to 16 kHz while they are prepared. The model starts from
# pretrained:kathleen_lpcnet (--init) and is fine-tuned for --steps steps (default 2000: recipe=own_voice).
# Anything else is passed to vocoder-train as overrides, and the `data.*` ones to vocoder-prepare too, e.g.
#   recipes/own_voice/run.sh --root ~/recordings --steps 500 trainer.batch_size=16
# Each stage skips work already done: the cache is checked entry by entry, training resumes from its last
# checkpoint, synthesis and scoring skip finished outputs. Outputs: exp/own_voice/<name>/{checkpoints,
# synth,natural,report} and cache/own_voice/<name>.
set -euo pipefail

stage=1
stop_stage=4
root=""
layout=auto
steps=""
init=""
anchors=true
exp=""
cache=""
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --layout) layout="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --init) init="$2"; shift 2 ;;
    --no-anchors) anchors=false; shift ;;
    --stage) stage="$2"; shift 2 ;;
    --stop-stage|--stop_stage) stop_stage="$2"; shift 2 ;;
    --exp) exp="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) overrides+=("$1"); shift ;;
  esac
done
if [ -z "$root" ]; then
  echo "run.sh: error: --root DIR is needed (a folder of your recordings, or a file list)" >&2
  exit 2
fi
if [ ! -e "$root" ]; then
  echo "run.sh: error: --root $root: no such folder or file" >&2
  exit 2
fi

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ -d "$root" ]; then
  root="$(cd "$root" && pwd)"
else
  root="$(cd "$(dirname "$root")" && pwd)/$(basename "$root")"
fi
name="$(basename "${root%.*}")"
source "$repo/scripts/_env.sh"
cd "$repo"
exp="${exp:-exp/own_voice/$name}"
cache="${cache:-cache/own_voice/$name}"
data=(data=local "data.root=$root" "data.layout=$layout" "data.cache_dir=$cache")
train_overrides=()
for override in ${overrides[@]+"${overrides[@]}"}; do
  case "$override" in
    data.*|+data.*) data+=("$override") ;;
    *) train_overrides+=("$override") ;;
  esac
done
[ -n "$steps" ] && train_overrides+=("trainer.max_steps=$steps")
[ -n "$init" ] && train_overrides+=("trainer.init_from=$init")

elapsed() { echo "   ($(( SECONDS - $1 )) s)"; }

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "== stage 1: prepare $root -> $cache (LPCNet is xiph's 16 kHz model: the recordings are resampled to 16 kHz)"
  started=$SECONDS
  vocoder-prepare "${data[@]}"
  elapsed "$started"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: fine-tune recipe=own_voice (from ${init:-pretrained:kathleen_lpcnet}) -> $exp"
  started=$SECONDS
  vocoder-train recipe=own_voice "${data[@]}" "trainer.out_dir=$exp" ${train_overrides[@]+"${train_overrides[@]}"}
  elapsed "$started"
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: synthesize the eval split -> $exp/synth"
  started=$SECONDS
  if [ -f "$exp/synth/synthesis.json" ] && [ "$exp/synth/synthesis.json" -nt "$exp/checkpoints/last.pt" ]; then
    echo "   up to date (delete $exp/synth to redo)"
  else
    vocoder-synth "checkpoint=$exp/checkpoints/last.pt" "input=$cache" split=eval \
      "output_dir=$exp/synth" "reference_dir=$exp/natural"
  fi
  elapsed "$started"
fi
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  echo "== stage 4: report -> $exp/report"
  started=$SECONDS
  if [ -f "$exp/report/summary.md" ] && [ "$exp/report/summary.md" -nt "$exp/synth/synthesis.json" ]; then
    echo "   up to date (delete $exp/report to redo)"
    cat "$exp/report/summary.md"
  else
    vocoder-eval "ref=$exp/natural" "hyp=$exp/synth" "output_dir=$exp/report" "anchors=$anchors"
  fi
  elapsed "$started"
fi
