"""Shared typing: the runtime shape check used on every public signature, and the denoiser type."""

from collections.abc import Callable

from beartype import beartype
from jaxtyping import Array, Float, Int, jaxtyped

# A denoiser maps a corrupted sequence and the step `t` to per-position logits.
Denoiser = Callable[[Int[Array, " D"], Int[Array, ""]], Float[Array, "D K"]]


def typecheck(fn):
    """Check `fn`'s jaxtyping annotations (shapes and dtypes) with beartype at call time.

    Under `jax.jit` the check runs once, at trace time, and costs nothing afterwards.
    """
    return jaxtyped(fn, typechecker=beartype)
