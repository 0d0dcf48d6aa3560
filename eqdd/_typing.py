"""Shared typing: the runtime shape check used on every public signature, and the denoiser type."""

from collections.abc import Callable

from beartype import beartype
from jaxtyping import Array, Bool, Float, Int, jaxtyped

# A denoiser maps a corrupted sequence and the step `t` to per-position logits.
Denoiser = Callable[[Int[Array, " D"], Int[Array, ""]], Float[Array, "D K"]]

# An Upscale ARDM denoiser maps `(tokens, t, revealed, stage)` to per-position outputs
# (`eqdd.processes.upscale`): the tokens hold the stage's target values where `revealed` and the coarser
# level's values elsewhere, `t = stage·D + t_in` is the global step, `stage` is in `0..S-1` (0 the
# coarsest); the output has `K` logits (data parametrisation) or `S·b` (direct) per position.
UpscaleDenoiser = Callable[
    [Int[Array, " D"], Int[Array, ""], Bool[Array, " D"], Int[Array, ""]], Float[Array, "D K_out"]
]


def typecheck(fn):
    """Check `fn`'s jaxtyping annotations (shapes and dtypes) with beartype at call time.

    Under `jax.jit` the check runs once, at trace time, and costs nothing afterwards.
    """
    return jaxtyped(fn, typechecker=beartype)
