"""Reusable attention ops and layers of timm-attn (pure PyTorch, CPU and GPU)."""
from .acmix import ACmix, acmix_position_grid, shift_kernels
from .aggregation import aggregate_neighbours
from .asymmetric_nonlocal import FusionNonLocal, PyramidNonLocal, pyramid_pool
from .bam import BAM
from .cbam import CBAM, CbamChannelGate, CbamSpatialGate
from .create_attn import ATTN_LAYERS, create_attn, get_attn
from .criss_cross import CrissCrossAttention
from .double_attention import DoubleAttention
from .dual_attention import ChannelAttention, DualAttention, PositionAttention
from .fca import MultiSpectralAttention, dct_basis, resnet_feature_size
from .gather_excite import GatherExcite
from .global_self_attention import GlobalSelfAttention, axial_positional_attention, content_attention, \
    relative_keys
from .gsop import GSoPAttention, covariance_pool
from .residual_attention import PreActBottleneck, ResidualAttentionModule, SoftMaskBranch
from .scse import SCSE, ChannelSE, SpatialSE
from .sliding_window_attention import mirror_index, mirror_pad, sliding_window_attention, \
    sliding_window_attention_plain
from .spa import SpatialPyramidAttention
from .bn_relu_conv import bn_relu_conv1x1
from .iau import IAU, ChannelIAU, SpatialIAU
from .neighbourhood import neighbourhood_output_size, neighbourhood_padding
from .object_context import ObjectContext
from .pointwise import (
    AvgPool2x2, MaxPool2x2, PointwiseConv2d, avg_pool_2x2, batchnorm_affine, max_pool_2x2, pointwise_conv)
from .recompute import batch_norm_train, recompute_in_backward
from .rel_attention import RelativeSelfAttention, relative_position_index, resize_relative_position_bias_table
from .rga import RelationAwareAttention
from .relation import PAIRWISE_RELATIONS, PATCHWISE_RELATIONS, gather_neighbours, pairwise_relation, \
    patchwise_relation, relation_channels
from .san_attention import PairwiseSelfAttention, PatchwiseSelfAttention, position_grid

__all__ = [
    'aggregate_neighbours', 'bn_relu_conv1x1', 'neighbourhood_output_size', 'neighbourhood_padding', 'MaxPool2x2',
    'AvgPool2x2', 'PointwiseConv2d', 'avg_pool_2x2', 'batchnorm_affine', 'max_pool_2x2', 'pointwise_conv',
    'batch_norm_train', 'recompute_in_backward', 'RelativeSelfAttention', 'relative_position_index',
    'resize_relative_position_bias_table',
    'PAIRWISE_RELATIONS', 'PATCHWISE_RELATIONS', 'gather_neighbours', 'pairwise_relation',
    'patchwise_relation', 'relation_channels', 'PairwiseSelfAttention', 'PatchwiseSelfAttention', 'position_grid',
    'BAM', 'CBAM', 'CbamChannelGate', 'CbamSpatialGate', 'ATTN_LAYERS', 'create_attn', 'get_attn',
    'MultiSpectralAttention', 'dct_basis', 'resnet_feature_size', 'GatherExcite', 'GSoPAttention', 'covariance_pool',
    'PreActBottleneck', 'ResidualAttentionModule', 'SoftMaskBranch', 'SCSE', 'ChannelSE', 'SpatialSE',
    'SpatialPyramidAttention', 'GlobalSelfAttention', 'axial_positional_attention', 'content_attention',
    'relative_keys', 'FusionNonLocal', 'PyramidNonLocal', 'pyramid_pool', 'CrissCrossAttention', 'DoubleAttention',
    'ChannelAttention', 'DualAttention', 'PositionAttention', 'IAU', 'ChannelIAU', 'SpatialIAU', 'ObjectContext',
    'RelationAwareAttention', 'ACmix', 'acmix_position_grid', 'shift_kernels', 'mirror_index', 'mirror_pad',
    'sliding_window_attention', 'sliding_window_attention_plain',
]
