#!/usr/bin/env bash
# The worked example of `timm-attn robustness` in docs/robustness.md; regenerates docs/assets/robustness_example.png.
#
# A synthetic 4-class ImageFolder of 32 x 32 images (disk, horizontal stripes, vertical stripes, upward
# triangle; random colours, sizes, positions, periods, noise), a tiny ResNet and a tiny ViT from timm
# trained on upright images with timm's unchanged train.py (no augmentation, so no flips), then the
# rotation / flip and FGSM / PGD evaluation of both on 120 validation images. Training is skipped for a
# model whose run folder exists already.
#
#   scripts/robustness_example.sh [WORKDIR]      (default: robustness-example/)
#   TIMM_SCRIPTS=path/to/timm-scripts PYTHON=python scripts/robustness_example.sh   (or TIMM_TRAIN=.../train.py)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-robustness-example}
TRAIN=${TIMM_TRAIN:-${TIMM_SCRIPTS:-$ROOT/../shared/peer/timm}/train.py}
PY=${PYTHON:-python}
mkdir -p "$WORK"

"$PY" - "$WORK/shapes" <<'PYEOF'
import os, sys
import numpy as np
from PIL import Image
root, size = sys.argv[1], 32
rng = np.random.default_rng(0)
yy, xx = np.mgrid[:size, :size]
def mask(kind):
    cy, cx = size / 2 - 0.5 + rng.uniform(-3, 3, 2)
    if kind == 'disk':
        return (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(5, 11) ** 2
    if kind in ('hstripes', 'vstripes'):
        period = int(rng.choice([4, 6, 8]))
        return ((yy if kind == 'hstripes' else xx) + rng.integers(period)) % period < period // 2
    h = rng.uniform(12, 22)  # triangle pointing up: apex at the top
    top = cy - h / 2
    return (yy >= top) & (yy <= top + h) & (np.abs(xx - cx) <= 0.6 * (yy - top))
for split, n in (('train', 240), ('validation', 60)):
    for kind in ('disk', 'hstripes', 'vstripes', 'triangle'):
        os.makedirs(os.path.join(root, split, kind), exist_ok=True)
        for i in range(n):
            fg, bg = rng.integers(140, 256, 3), rng.integers(0, 110, 3)
            if rng.random() < 0.5:
                fg, bg = bg, fg
            img = np.where(mask(kind)[..., None], fg, bg) + rng.integers(-15, 16, (size, size, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(root, split, kind, f'{i:04d}.png'))
PYEOF

for model in test_resnet test_vit; do
    [ -f "$WORK/runs/$model/model_best.pth.tar" ] && continue  # trained already
    kwargs=(--epochs 8)
    [ "$model" = test_vit ] && kwargs=(--epochs 4 --model-kwargs patch_size=8)  # 4 x 4 tokens, slower per epoch
    "$PY" "$TRAIN" --data-dir "$WORK/shapes" --model "$model" "${kwargs[@]}" --num-classes 4 --img-size 32 \
        --crop-pct 1.0 --no-aug -b 32 --opt adamw --lr 2e-3 --weight-decay 0.05 --warmup-epochs 0 \
        --sched cosine --device cpu --workers 0 --seed 0 --log-interval 100 --checkpoint-hist 1 \
        --output "$WORK/runs" --experiment "$model"
done

"$PY" -m timm_attn robustness --models "$WORK/runs/test_resnet" "$WORK/runs/test_vit" \
    --data-dir "$WORK/shapes/validation" --max-samples 120 --epsilons 0 1/255 2/255 4/255 8/255 --pgd-steps 5 --seed 0 \
    --title 'timm test_resnet vs test_vit, trained upright on synthetic shapes (120 validation images)' \
    --out "$WORK/out"
cp "$WORK/out/robustness.png" "$ROOT/docs/assets/robustness_example.png"
