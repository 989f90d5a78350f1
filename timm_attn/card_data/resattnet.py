"""Card data of the Residual Attention Networks (``timm_attn.models.resattnet``): no weights (no card)."""

NOTES = {
    'resattnet56': ('paper: top-1 error 21.76 (ImageNet-1k val, 224 crop)',),
    'resattnet92': ('paper: top-1 error 19.5 (ImageNet-1k val, 320 crop)',),
}
