"""The public names of ``timm_attn.layers`` and ``timm_attn.models``, listed: a reorganisation of the files behind
them must not silently drop one. Add a name here when it becomes public; remove one only with a deprecation."""
import pytest

import timm_attn.layers
import timm_attn.models

LAYERS = (
    'ACmix', 'ATTN_LAYERS', 'AvgPool2x2', 'BAM', 'CBAM', 'CbamChannelGate', 'CbamSpatialGate', 'ChannelAttention',
    'ChannelIAU', 'ChannelSE', 'CrissCrossAttention', 'DoubleAttention', 'DualAttention', 'FusionNonLocal',
    'GSOP_MODES', 'GSoPAttention', 'GatherExcite', 'GlobalSelfAttention', 'IAU', 'MaxPool2x2',
    'MultiSpectralAttention', 'ObjectContext', 'PAIRWISE_RELATIONS', 'PATCHWISE_RELATIONS', 'PairwiseSelfAttention',
    'PatchwiseSelfAttention', 'PointwiseConv2d', 'PositionAttention', 'PreActBottleneck', 'PyramidNonLocal',
    'RelationAwareAttention', 'RelativeSelfAttention', 'ResidualAttentionModule', 'SCSE', 'SecondOrderPool',
    'SoftMaskBranch', 'SpatialIAU', 'SpatialPyramidAttention', 'SpatialSE', 'acmix_position_grid',
    'aggregate_neighbours', 'avg_pool_2x2', 'axial_positional_attention', 'batch_norm_train', 'batchnorm_affine',
    'bn_relu_conv1x1', 'content_attention', 'covariance_pool', 'create_attn', 'dct_basis', 'gather_neighbours',
    'get_attn', 'max_pool_2x2', 'mirror_index', 'mirror_pad', 'neighbourhood_output_size', 'neighbourhood_padding',
    'newton_schulz_sqrtm', 'pairwise_relation', 'patchwise_relation', 'pointwise_conv', 'position_grid',
    'pyramid_pool', 'recompute_in_backward', 'relation_channels', 'relative_keys', 'relative_position_index',
    'resize_relative_position_bias_table', 'resnet_feature_size', 'shift_kernels', 'sliding_window_attention',
    'sliding_window_attention_plain',
)

MODELS = (
    'ACmixPvt', 'ACmixResNet', 'ACmixSAN', 'ACmixSwinTransformer', 'AttentionResNet', 'CheckpointMismatchError',
    'CoAtNet',
    'ContextResNet', 'GSAResNet', 'PretrainedWeightsError', 'PyramidVisionTransformer', 'ResidualAttentionNet', 'SAN',
    'SecondOrderResNet',
    'plugin_models', 'reinit_non_persistent_buffers',
)


@pytest.mark.parametrize('package, names', [(timm_attn.layers, LAYERS), (timm_attn.models, MODELS)],
                         ids=['layers', 'models'])
def test_public_names_are_exported(package, names):
    missing = [n for n in names if not hasattr(package, n)]
    assert missing == []
    assert sorted(set(names) - set(package.__all__)) == [], 'public but not in __all__'


def test_every_exported_layer_name_is_listed():
    """A new public name is a decision: it gets listed here (and so is kept from then on)."""
    assert sorted(set(timm_attn.layers.__all__) - set(LAYERS)) == []


def test_public_layers_are_importable_from_the_package():
    namespace = {}
    exec('from timm_attn.layers import ' + ', '.join(LAYERS), namespace)
    assert all(callable(namespace[n]) or isinstance(namespace[n], (dict, tuple, frozenset, list))
               for n in LAYERS)
