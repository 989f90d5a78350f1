"""Reusable attention ops and layers of timm-attn (pure PyTorch, CPU and GPU)."""
from .aggregation import aggregate_neighbours
from .bn_relu_conv import bn_relu_conv1x1
from .neighbourhood import neighbourhood_output_size, neighbourhood_padding
from .pointwise import MaxPool2x2, PointwiseConv2d, batchnorm_affine, max_pool_2x2, pointwise_conv
from .recompute import batch_norm_train, recompute_in_backward
from .rel_attention import RelativeSelfAttention, relative_position_index, resize_relative_position_bias_table
from .relation import PAIRWISE_RELATIONS, PATCHWISE_RELATIONS, gather_neighbours, pairwise_relation, \
    patchwise_relation, relation_channels
from .san_attention import PairwiseSelfAttention, PatchwiseSelfAttention, position_grid

__all__ = [
    'aggregate_neighbours', 'bn_relu_conv1x1', 'neighbourhood_output_size', 'neighbourhood_padding', 'MaxPool2x2',
    'PointwiseConv2d', 'batchnorm_affine', 'max_pool_2x2', 'pointwise_conv', 'batch_norm_train',
    'recompute_in_backward', 'RelativeSelfAttention', 'relative_position_index', 'resize_relative_position_bias_table',
    'PAIRWISE_RELATIONS', 'PATCHWISE_RELATIONS', 'gather_neighbours', 'pairwise_relation',
    'patchwise_relation', 'relation_channels', 'PairwiseSelfAttention', 'PatchwiseSelfAttention', 'position_grid',
]
