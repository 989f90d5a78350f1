"""SAN's operators (Zhao et al., CVPR 2020): footprint geometry, relation functions, aggregation and the SAM."""
from .aggregation import aggregate_neighbours
from .neighbourhood import neighbourhood_output_size, neighbourhood_padding
from .relation import PAIRWISE_RELATIONS, PATCHWISE_RELATIONS, gather_neighbours, pairwise_relation, \
    patchwise_relation, relation_channels
from .san_attention import PairwiseSelfAttention, PatchwiseSelfAttention, position_grid

__all__ = [
    'aggregate_neighbours', 'neighbourhood_output_size', 'neighbourhood_padding', 'PAIRWISE_RELATIONS',
    'PATCHWISE_RELATIONS', 'gather_neighbours', 'pairwise_relation', 'patchwise_relation', 'relation_channels',
    'PairwiseSelfAttention', 'PatchwiseSelfAttention', 'position_grid',
]
