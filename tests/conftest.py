import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # tests/reference.py

SHARED = os.environ.get('TIMM_ATTN_SHARED', os.path.join(os.path.dirname(__file__), '..', '..', 'shared'))


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
