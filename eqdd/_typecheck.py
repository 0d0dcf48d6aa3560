"""One spelling of the runtime shape check used on every public signature."""

from beartype import beartype
from jaxtyping import jaxtyped


def typecheck(fn):
    """Check `fn`'s jaxtyping annotations (shapes and dtypes) with beartype at call time.

    Under `jax.jit` the check runs once, at trace time, and costs nothing afterwards.
    """
    return jaxtyped(fn, typechecker=beartype)
