"""The absorbing forward process of order-agnostic ARDMs.

Conventions (the code convention of the reference, 0-indexed):

- `sigma[i]` is the step at which position `i` is generated: a permutation of `0..D-1` read as a
  position -> step map.
- At step `t` in `0..D-1`, the positions with `sigma < t` are revealed (exactly `t` of them), the
  position with `sigma == t` is the one generated next, and the `D - t` positions with `sigma >= t`
  are masked, i.e. hold the absorbing token.

The process's settings, the absorbing token and what the network outputs, are an
[`AbsorbingProcess`][]; the maths is in the free functions of this module.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Int, PRNGKeyArray

from eqdd._typing import typecheck


class AbsorbingProcess(eqx.Module):
    """The configuration of the absorbing process and of the OA-ARDM's output.

    The data classes are `0..absorbing_token-1` and the absorbing (mask) token is the class after them,
    so the network's inputs hold `absorbing_token + 1` classes. The network's output per position is a
    categorical over the data classes (`K = absorbing_token` logits) or, with `mixture_components = M
    > 0`, `3M` parameters of a mixture of `M` discretised logistics over the `K` classes (the paper's
    audio baseline, for `K = 2^16`; see [`eqdd.outputs.mixture_log_prob_of`][]). Static integers, so a
    value of this class is hashable and may sit in a static field; the maths is in the free functions
    of this module and, for the output, in [`eqdd.outputs.oa_log_prob_of`][].

    Attributes:
        absorbing_token: the mask token, `K`.
        mixture_components: `M`, or 0 for `K` logits.
    """

    absorbing_token: int = eqx.field(static=True)
    mixture_components: int = eqx.field(static=True, default=0)

    def __check_init__(self):
        if self.absorbing_token < 0:
            raise ValueError(
                f"the absorbing token is a class index and must be non-negative, got {self.absorbing_token}"
            )
        if self.mixture_components < 0:
            raise ValueError(
                f"mixture_components must be 0 (logits) or positive, got {self.mixture_components}"
            )

    @property
    def num_classes(self) -> int:
        """`K`, the data classes (`0..K-1`; the absorbing token is `K`)."""
        return self.absorbing_token

    @property
    def num_outputs(self) -> int:
        """The network's outputs per position: `K` logits, or `3M` mixture parameters."""
        return 3 * self.mixture_components if self.mixture_components else self.num_classes


@typecheck
def sample_order(key: PRNGKeyArray, num_positions: int) -> Int[Array, " D"]:
    """Draw a uniformly random generation order.

    Arguments:
        key: a JAX PRNG key.
        num_positions: the number of positions `D`.

    Returns:
        `sigma`, an integer array of shape `(D,)` holding a permutation of `0..D-1`; `sigma[i]` is
        the step at which position `i` is generated.
    """
    return jax.random.permutation(key, num_positions).astype(jnp.int32)


@typecheck
def sample_step(key: PRNGKeyArray, num_positions: int) -> Int[Array, ""]:
    """Draw the step `t` uniformly from `0..D-1`.

    Arguments:
        key: a JAX PRNG key.
        num_positions: the number of positions `D`.

    Returns:
        A scalar int32 `t`.
    """
    return jax.random.randint(key, (), 0, num_positions, dtype=jnp.int32)


@typecheck
def revealed_mask(sigma: Int[Array, " D"], t: Int[Array, ""] | int) -> Bool[Array, " D"]:
    """The positions already generated before step `t`: `sigma < t` (exactly `t` of them).

    Arguments:
        sigma: the order, as returned by [`eqdd.processes.sample_order`][].
        t: the step, in `0..D-1` (or `D`, when everything is revealed).

    Returns:
        A boolean mask of shape `(D,)`.
    """
    return sigma < t


@typecheck
def current_mask(sigma: Int[Array, " D"], t: Int[Array, ""] | int) -> Bool[Array, " D"]:
    """The position generated at step `t`: `sigma == t` (exactly one of them).

    Arguments:
        sigma: the order.
        t: the step, in `0..D-1`.

    Returns:
        A boolean mask of shape `(D,)` with a single `True`.
    """
    return sigma == t


@typecheck
def corrupt(
    x: Int[Array, " D"], sigma: Int[Array, " D"], t: Int[Array, ""] | int, absorbing: int
) -> Int[Array, " D"]:
    """Replace every position not yet revealed at step `t` by the absorbing token.

    Arguments:
        x: the clean sequence of class indices.
        sigma: the order.
        t: the step.
        absorbing: the index of the absorbing (mask) token.

    Returns:
        `x` where `sigma < t`, `absorbing` elsewhere.
    """
    return jnp.where(revealed_mask(sigma, t), x, jnp.asarray(absorbing, x.dtype))


@typecheck
def segments(policy: Int[Array, " P"], num_positions: int) -> tuple[Int[Array, " P"], Int[Array, " P"]]:
    """The segments of a generation policy.

    A policy is a strictly increasing array of left boundaries `0 = b_0 < … < b_{P-1} < D`; segment
    `j` generates the positions with `b_j <= sigma < b_{j+1}` (with `b_P = D`) from one network call
    at step `b_j`. The policy `0..D-1` is one position per call.

    Arguments:
        policy: the left boundaries.
        num_positions: `D`.

    Returns:
        `(lefts, rights)`: the left boundaries and the (exclusive) right ones.
    """
    rights = jnp.concatenate([policy[1:], jnp.array([num_positions], policy.dtype)])
    return policy, rights
