"""Card data of ACmix on SAN and PVT (``timm_attn.models.acmix_san_pvt``): no weights were released; the paper's
numbers (official README table, ImageNet-1k val, 224) are the cfgs' notes."""

NOTES = {
    'acmix_san10': ('paper: 12.1M params, 1.9G FLOPs, top-1 77.6 (SAN-10 77.1); no weights released',),
    'acmix_san15': ('paper: 16.6M params, 2.7G FLOPs, top-1 78.4 (SAN-15 78.0); no weights released',),
    'acmix_san19': ('paper: 21.2M params, 3.4G FLOPs, top-1 78.7 (SAN-19 78.2); no weights released',),
    'acmix_pvt_tiny': ('paper: 13M params, 2.0G FLOPs, top-1 78.0 (PVT-T 75.1); no weights released',),
    'acmix_pvt_small': ('paper: 25M params, 3.9G FLOPs, top-1 81.7 (PVT-S 79.8); no weights released',),
}
