"""The ``timm-attn`` command (also ``python -m timm_attn``).

    timm-attn bench [options]     plugin models against timm baselines (see ``timm_attn.bench``)
    timm-attn list [pattern]      the registered plugin models
    timm-attn gpu-check [options] every family on a CUDA device against the CPU (see ``timm_attn.gpu_check``)
    timm-attn robustness [options] rotations / flips and FGSM / PGD for any timm models
                                  (see ``timm_attn.robustness``)
"""
import argparse
import sys
from typing import List, Optional

__all__ = ['main']


def _list(args: argparse.Namespace) -> int:
    from .models import plugin_models
    for name in plugin_models(args.pattern):
        print(name)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    from . import bench
    parser = argparse.ArgumentParser(prog='timm-attn', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command')
    p_bench = sub.add_parser('bench', help='benchmark plugin models against timm baselines')
    bench.add_arguments(p_bench)
    p_list = sub.add_parser('list', help='list the plugin models')
    p_list.add_argument('pattern', nargs='?', default='*')
    p_gpu = sub.add_parser('gpu-check', help='every family on a CUDA device against the CPU, and timings')
    from . import gpu_check
    gpu_check.add_arguments(p_gpu)
    p_robust = sub.add_parser('robustness', help='rotation / flip and adversarial robustness of any timm models')
    from .robustness import report as robustness
    robustness.add_arguments(p_robust)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == 'list':
        return _list(args)
    if args.command == 'gpu-check':
        return gpu_check.main(args)
    if args.command == 'robustness':
        return robustness.main(args)
    if args.command is None:  # no arguments: the default comparison
        args = parser.parse_args(['bench'])
    return bench.main(args)


if __name__ == '__main__':
    sys.exit(main())
