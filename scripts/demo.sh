#!/usr/bin/env bash
# The whole pipeline on the embedded sample corpus (creates/updates ./.venv first):
#   prepare features -> copy-synthesize the eval split with the packaged pretrained LPCNet
#   (pretrained:kathleen_lpcnet), with the float and the 8-bit synthesizer -> score both with WORLD /
#   Griffin-Lim / mu-law anchors on one listening page -> train the tiny `demo` LPCNet briefly ->
#   synthesize and score it too (the training loop end to end).
# Outputs land in exp/demo (checkpoints, TensorBoard logs, wavs, reports). Extra arguments are Hydra
# overrides for the training step, e.g. `scripts/demo.sh trainer.max_steps=50`. The last line printed
# is the listening page of the pretrained model: open it in a browser.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
cd "$repo"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
out=exp/demo
cache=cache/sample
echo "== 1/5 prepare: embedded sample corpus -> $cache"
vocoder-prepare data=sample data.cache_dir="$cache"
echo "== 2/5 synthesize the eval split with pretrained:kathleen_lpcnet -> $out/pretrained/synth (float), synth_int8"
vocoder-synth checkpoint=pretrained:kathleen_lpcnet input="$cache" split=eval \
  output_dir="$out/pretrained/synth" reference_dir="$out/natural"
vocoder-synth checkpoint=pretrained:kathleen_lpcnet input="$cache" split=eval backend=int8 \
  output_dir="$out/pretrained/synth_int8"
echo "== 3/5 evaluate both against the natural recordings (with WORLD / Griffin-Lim / mu-law anchors)"
vocoder-eval ref="$out/natural" hyp.fast="$out/pretrained/synth" hyp.int8="$out/pretrained/synth_int8" \
  output_dir="$out/pretrained/report" anchors=true
echo "== 4/5 train: recipe=demo -> $out (a few minutes: the training loop, not a usable model)"
vocoder-train recipe=demo data.cache_dir="$cache" trainer.out_dir="$out" "$@"
echo "== 5/5 synthesize and score the demo model's eval split -> $out/synth"
vocoder-synth checkpoint="$out/checkpoints/last.pt" input="$cache" split=eval output_dir="$out/synth"
vocoder-eval ref="$out/natural" hyp="$out/synth" output_dir="$out/report" plots=1
echo
echo "demo model:  $out/report/summary.md, listening page $out/report/index.html"
echo "pretrained:  $out/pretrained/report/summary.md (wavs in $out/pretrained/synth, synth_int8)"
echo "TensorBoard: tensorboard --logdir exp"
echo "listening page (open it in a browser): $out/pretrained/report/index.html"
