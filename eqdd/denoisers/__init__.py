"""Denoisers: Equinox modules that map a corrupted sequence (and a step) to per-position logits:
[`Transformer`][eqdd.denoisers.Transformer] (text), [`UNet`][eqdd.denoisers.UNet] (images),
[`WaveNet`][eqdd.denoisers.WaveNet] (audio)."""

from eqdd.denoisers.attention import dot_product_attention
from eqdd.denoisers.transformer import Transformer
from eqdd.denoisers.unet import UNet
from eqdd.denoisers.wavenet import WaveNet

__all__ = ["Transformer", "UNet", "WaveNet", "dot_product_attention"]
