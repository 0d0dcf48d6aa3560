"""Denoisers: Equinox modules that map a corrupted sequence (and a step) to per-position logits."""

from eqdd.denoisers.attention import dot_product_attention
from eqdd.denoisers.transformer import Transformer

__all__ = ["Transformer", "dot_product_attention"]
