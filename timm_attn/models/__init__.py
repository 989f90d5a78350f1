"""Model families; importing this package registers every model with timm."""
from .san import *
