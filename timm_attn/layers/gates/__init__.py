"""Channel and spatial gates: modules that reweight a feature map by attention computed from it."""
from .bam import BAM
from .cbam import CBAM, CbamChannelGate, CbamSpatialGate
from .fca import MultiSpectralAttention, dct_basis, resnet_feature_size
from .gather_excite import GatherExcite
from .gsop import GSOP_MODES, GSoPAttention, SecondOrderPool, covariance_pool, newton_schulz_sqrtm
from .scse import SCSE, ChannelSE, SpatialSE
from .spa import SpatialPyramidAttention

__all__ = [
    'BAM', 'CBAM', 'CbamChannelGate', 'CbamSpatialGate', 'MultiSpectralAttention', 'dct_basis',
    'resnet_feature_size', 'GatherExcite', 'GSOP_MODES', 'GSoPAttention', 'SecondOrderPool',
    'covariance_pool', 'newton_schulz_sqrtm', 'SCSE', 'ChannelSE', 'SpatialSE',
    'SpatialPyramidAttention',
]
