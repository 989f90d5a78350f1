#!/usr/bin/env python3
"""Every family's smallest model on a CUDA device against the CPU: float32, channels_last, bf16 / fp16
autocast and torch.compile, eval and one training step, then eval / training timings against the ResNet /
timm baselines. Exits 1 when a comparison is outside its tolerance.

    python scripts/gpu_check.py [--out gpu_check.json] [--models ...] [--variants ...] [--no-bench]

The same as ``timm-attn gpu-check``; the logic and tolerances are in ``timm_attn/gpu_check.py``.
"""
import sys

from timm_attn.gpu_check import _parser, main

if __name__ == '__main__':
    sys.exit(main(_parser().parse_args()))
