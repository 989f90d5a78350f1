"""Reusable attention ops and layers of timm-attn (pure PyTorch, CPU and GPU)."""
from .aggregation import aggregate_neighbours
from .neighbourhood import neighbourhood_output_size, neighbourhood_padding
from .relation import PAIRWISE_RELATIONS, PATCHWISE_RELATIONS, gather_neighbours, pairwise_relation, \
    patchwise_relation, relation_channels
from .san_attention import PairwiseSelfAttention, PatchwiseSelfAttention, position_grid
from .pointwise import MaxPool2x2, PointwiseConv2d, max_pool_2x2
