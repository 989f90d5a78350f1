"""Private helpers of timm_attn.layers and timm_attn.models: CPU fast paths and shared building blocks.

Every helper computes the same function as the plain PyTorch it replaces (up to float rounding) and only
chooses a faster kernel, a smaller memory footprint or a cache; measurements belong in docs/performance.md.

- ``pointwise``: 1x1 convolution as a batched matmul on the CPU (``PointwiseConv2d``, ``pointwise_conv``).
- ``pooling``: 2x2 and 3x3 / stride-2 pools as maxima / sums of strided views on the CPU.
- ``fold``: BatchNorm folded into the preceding conv for eval paths, with a cache.
- ``batchnorm``: ``is_plain_batchnorm``, which BatchNorms the fast paths may replace by their own math.
- ``recompute``: recomputation in backward for layers that contain BatchNorm.
- ``bn_relu_conv``: training-mode BN -> ReLU -> 1x1 conv that stores only its input.
- ``conv_bn_act``: ``conv_bn``, the one Conv -> BN [-> ReLU] builder (``nn.Sequential`` keys ``0`` / ``1``).
- ``chunking``: the one chunk-size policy of the inference paths that split a batch.

Chunk-size policy (``chunking.chunk_size``): eval paths without autograd run a batch in chunks whose largest
temporary holds at most ``TIMM_ATTN_CHUNK_NUMEL`` elements when that environment variable is set (any device,
read at each call), else ``CPU_CHUNK_NUMEL`` (2^20) on the CPU and ``DEVICE_CHUNK_NUMEL`` (2^24) elsewhere; a
module's ``inference_chunk_numel`` attribute overrides it. Used by SAN's attention and stem and by GSA's
positional attention.
"""
from .batchnorm import is_plain_batchnorm
from .bn_relu_conv import bn_relu_conv1x1
from .chunking import CHUNK_NUMEL_ENV, CPU_CHUNK_NUMEL, DEVICE_CHUNK_NUMEL, chunk_numel, chunk_size
from .conv_bn_act import conv_bn
from .fold import ConvBnFoldCache, batchnorm_affine, fold_conv_bn, is_foldable_bn, is_foldable_shortcut, \
    pointwise_bn_relu_inference
from .pointwise import MATMUL_MIN_POSITIONS, PointwiseConv2d, pointwise_conv, pointwise_conv_by_size
from .pooling import AvgPool2x2, MaxPool2x2, StemMaxPool, avg_pool_2x2, is_avg_down_pool, max_pool_2x2, \
    max_pool_3x3_s2, pool_2x2_nchw, pool_2x2_nhwc
from .recompute import batch_norm_train, recompute_in_backward, running_stats_factor

__all__ = [
    'is_plain_batchnorm', 'bn_relu_conv1x1',
    'CHUNK_NUMEL_ENV', 'CPU_CHUNK_NUMEL', 'DEVICE_CHUNK_NUMEL', 'chunk_numel', 'chunk_size',
    'conv_bn', 'ConvBnFoldCache', 'batchnorm_affine', 'fold_conv_bn', 'is_foldable_bn', 'is_foldable_shortcut',
    'pointwise_bn_relu_inference', 'MATMUL_MIN_POSITIONS', 'PointwiseConv2d', 'pointwise_conv',
    'pointwise_conv_by_size', 'AvgPool2x2', 'MaxPool2x2', 'StemMaxPool', 'avg_pool_2x2', 'is_avg_down_pool',
    'max_pool_2x2', 'max_pool_3x3_s2', 'pool_2x2_nchw', 'pool_2x2_nhwc', 'batch_norm_train', 'recompute_in_backward',
    'running_stats_factor',
]
