#!/usr/bin/env bash
# The whole pipeline on the embedded sample corpus (creates/updates ./.venv first):
#   prepare features -> train the tiny `demo` LPCNet -> synthesize the eval split -> score it with anchors.
# Outputs land in exp/demo (checkpoints, TensorBoard logs, wavs, report). Extra arguments are Hydra
# overrides for the training step, e.g. `scripts/demo.sh trainer.max_steps=50`.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
cd "$repo"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
out=exp/demo
cache=cache/sample
echo "== 1/4 prepare: embedded sample corpus -> $cache"
vocoder-prepare data=sample data.cache_dir="$cache"
echo "== 2/4 train: recipe=demo -> $out"
vocoder-train recipe=demo data.cache_dir="$cache" trainer.out_dir="$out" "$@"
echo "== 3/4 synthesize the eval split with the EMA weights -> $out/synth"
vocoder-synth checkpoint="$out/checkpoints/last.pt" input="$cache" split=eval output_dir="$out/synth" \
  reference_dir="$out/natural"
echo "== 4/4 evaluate against the natural recordings (with WORLD / Griffin-Lim / mu-law anchors)"
vocoder-eval ref="$out/natural" hyp="$out/synth" output_dir="$out/report" anchors=true
echo
echo "wavs:        $out/synth"
echo "report:      $out/report/summary.md (scores.csv, plots/*.png)"
echo "TensorBoard: tensorboard --logdir exp"
