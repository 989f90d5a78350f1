"""Reusable attention ops and layers of timm-attn (pure PyTorch, CPU and GPU).

- ``san``: SAN's pairwise / patchwise self-attention and its ops (relation, aggregation, footprint geometry).
- ``gates``: channel and spatial gates (CBAM, BAM, scSE, SPA, FcaNet, Gather-Excite, GSoP).
- ``context``: context modules (A2, DANet, CCNet, APNB / AFNB, OCR, IAU, RGA).
- ``acmix``, ``sliding_window_attention``, ``global_self_attention``, ``rel_attention``, ``residual_attention``:
  one attention module each; ``create_attn``: the modules by name.
- ``_ops``: private CPU fast paths and shared building blocks (some re-exported here).
"""
from ._ops import AvgPool2x2, MaxPool2x2, PointwiseConv2d, avg_pool_2x2, batch_norm_train, batchnorm_affine, \
    bn_relu_conv1x1, max_pool_2x2, pointwise_conv, recompute_in_backward
from .acmix import ACmix, acmix_position_grid, shift_kernels
from .context import IAU, ChannelAttention, ChannelIAU, CrissCrossAttention, DoubleAttention, DualAttention, \
    FusionNonLocal, ObjectContext, PositionAttention, PyramidNonLocal, RelationAwareAttention, SpatialIAU, \
    pyramid_pool
from .create_attn import ATTN_LAYERS, create_attn, get_attn
from .gates import BAM, CBAM, GSOP_MODES, SCSE, CbamChannelGate, CbamSpatialGate, ChannelSE, GatherExcite, \
    GSoPAttention, MultiSpectralAttention, SecondOrderPool, SpatialPyramidAttention, SpatialSE, covariance_pool, \
    dct_basis, newton_schulz_sqrtm, resnet_feature_size
from .global_self_attention import GlobalSelfAttention, axial_positional_attention, content_attention, \
    relative_keys
from .rel_attention import RelativeSelfAttention, relative_position_index, resize_relative_position_bias_table
from .residual_attention import PreActBottleneck, ResidualAttentionModule, SoftMaskBranch
from .san import PAIRWISE_RELATIONS, PATCHWISE_RELATIONS, PairwiseSelfAttention, PatchwiseSelfAttention, \
    aggregate_neighbours, gather_neighbours, neighbourhood_output_size, neighbourhood_padding, pairwise_relation, \
    patchwise_relation, position_grid, relation_channels
from .sliding_window_attention import mirror_index, mirror_pad, sliding_window_attention, \
    sliding_window_attention_plain

__all__ = [
    'aggregate_neighbours', 'bn_relu_conv1x1', 'neighbourhood_output_size', 'neighbourhood_padding', 'MaxPool2x2',
    'AvgPool2x2', 'PointwiseConv2d', 'avg_pool_2x2', 'batchnorm_affine', 'max_pool_2x2', 'pointwise_conv',
    'batch_norm_train', 'recompute_in_backward', 'RelativeSelfAttention', 'relative_position_index',
    'resize_relative_position_bias_table',
    'PAIRWISE_RELATIONS', 'PATCHWISE_RELATIONS', 'gather_neighbours', 'pairwise_relation',
    'patchwise_relation', 'relation_channels', 'PairwiseSelfAttention', 'PatchwiseSelfAttention', 'position_grid',
    'BAM', 'CBAM', 'CbamChannelGate', 'CbamSpatialGate', 'ATTN_LAYERS', 'create_attn', 'get_attn',
    'MultiSpectralAttention', 'dct_basis', 'resnet_feature_size', 'GatherExcite', 'GSoPAttention', 'covariance_pool',
    'GSOP_MODES', 'SecondOrderPool', 'newton_schulz_sqrtm',
    'PreActBottleneck', 'ResidualAttentionModule', 'SoftMaskBranch', 'SCSE', 'ChannelSE', 'SpatialSE',
    'SpatialPyramidAttention', 'GlobalSelfAttention', 'axial_positional_attention', 'content_attention',
    'relative_keys', 'FusionNonLocal', 'PyramidNonLocal', 'pyramid_pool', 'CrissCrossAttention', 'DoubleAttention',
    'ChannelAttention', 'DualAttention', 'PositionAttention', 'IAU', 'ChannelIAU', 'SpatialIAU', 'ObjectContext',
    'RelationAwareAttention', 'ACmix', 'acmix_position_grid', 'shift_kernels', 'mirror_index', 'mirror_pad',
    'sliding_window_attention', 'sliding_window_attention_plain',
]
