#!/usr/bin/env bash
# The whole pipeline on the embedded sample corpus (creates/updates ./.venv first):
#   prepare features -> copy-synthesize the eval split with the packaged pretrained LPCNet
#   (pretrained:kathleen_lpcnet) -> score it with WORLD / Griffin-Lim / mu-law anchors ->
#   train the tiny `demo` LPCNet briefly -> synthesize and score it too (the training loop end to end).
# Outputs land in exp/demo (checkpoints, TensorBoard logs, wavs, reports). Extra arguments are Hydra
# overrides for the training step, e.g. `scripts/demo.sh trainer.max_steps=50`.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
cd "$repo"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
out=exp/demo
cache=cache/sample
echo "== 1/5 prepare: embedded sample corpus -> $cache"
vocoder-prepare data=sample data.cache_dir="$cache"
echo "== 2/5 synthesize the eval split with pretrained:kathleen_lpcnet -> $out/pretrained/synth"
vocoder-synth checkpoint=pretrained:kathleen_lpcnet input="$cache" split=eval \
  output_dir="$out/pretrained/synth" reference_dir="$out/natural"
echo "== 3/5 evaluate it against the natural recordings (with WORLD / Griffin-Lim / mu-law anchors)"
vocoder-eval ref="$out/natural" hyp="$out/pretrained/synth" output_dir="$out/pretrained/report" anchors=true
echo "== 4/5 train: recipe=demo -> $out (a few minutes: the training loop, not a usable model)"
vocoder-train recipe=demo data.cache_dir="$cache" trainer.out_dir="$out" "$@"
echo "== 5/5 synthesize and score the demo model's eval split -> $out/synth"
vocoder-synth checkpoint="$out/checkpoints/last.pt" input="$cache" split=eval output_dir="$out/synth"
vocoder-eval ref="$out/natural" hyp="$out/synth" output_dir="$out/report" plots=1
echo
echo "pretrained:  $out/pretrained/report/summary.md (wavs in $out/pretrained/synth)"
echo "demo model:  $out/report/summary.md (wavs in $out/synth)"
echo "TensorBoard: tensorboard --logdir exp"
