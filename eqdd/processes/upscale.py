"""The forward process of Upscale ARDMs: deterministic maps that remove base-`b` digits (reference §3).

A data class `k` in `0..K-1` has `S` base-`b` digits, `S` the smallest integer with `b^S >= K` (computed
in integers; `ceil(log K / log b)` in floats can be off by one). The **level** `l` in `0..S` counts the
digits revealed, most significant first: level `S` is the data (the paper's `x^(S)`), level 0 the
absorbing state (`x^(0)`). Generative **stage** `s` in `0..S-1` (0 the coarsest) generates level `s + 1`
from level `s`: it reveals the digit `(k // b^(S-1-s)) mod b`, so the paper's `p(x^(s+1) | x^(s))`.

At level `l` a class is known through its **prefix** `k // b^(S-l)` (one of `ceil(K / b^(S-l))`), and its
value is `offset_l + scale_l · prefix`:

- variant `"zero"` (the paper's images): `offset_l = 0`, `scale_l = b^(S-l)`, so the value is `k` with its
  `S - l` least significant digits set to zero, `floor(k / b^(S-l))·b^(S-l)`; the absorbing state is 0 and
  every value is a data class (`K` input classes).
- variant `"augmented"` (reference §3.3): `scale_l = 1`, and each level below `S` gets its own block of new
  indices after the `K` data classes, in destruction order (level `S-1` from `K` on, then level `S-2`, …);
  level 0's single value is the absorbing state and `K' = absorbing + 1` input classes
  (`K = 256, b = 2`: 511 classes, absorbing 510).

Everything is integer arithmetic on small per-level tables (`S + 1` entries): no `K x K` matrix is ever
built, so `K = 2^16` costs nothing. Levels and stages may be traced integers.

The model's distribution over a stage's values is given **per candidate child**: for a position whose
level-`s` value is `parent`, [`eqdd.outputs.stage_log_probs`][] returns log-probabilities over the `b`
digits `d`, i.e. over the children `child_values(parent, d, s)`; a digit whose child does not exist (`K`
not a power of `b`) gets `-inf`. Both of the paper's output parametrisations map to that form (the
model's is `UpscaleTransitions.parametrization`, so that the maps and the meaning of the network's output
travel as one value):

- `"data"`: `K` logits over the data classes; their softmax is pushed to the stage's values (the mass of a
  child is the mass of the data classes below it), restricted to the children of `parent` and
  renormalised. This is the paper's `(P^T x^(s)) ⊙ (P̄ θ)` normalised, computed in log space: the
  log-masses of every level come from nested `logsumexp`s over `b` consecutive entries (classes below
  one value are consecutive), so a child far below float32's smallest probability keeps a finite
  log-probability, and the cost is that of about `b/(b-1)` softmaxes, with no scatter.
- `"direct"`: `S·b` logits, read as `(S, b)`; row `s` holds the stage's digit logits.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Int

from eqdd._typing import typecheck

VARIANTS = ("zero", "augmented")
PARAMETRIZATIONS = ("data", "direct")
_INT32_MAX = 2**31 - 1


class UpscaleTransitions(eqx.Module):
    """The configuration of the digit-removing maps and of the model's output parametrisation; the maths
    is in the free functions of this module (and, for the output, in [`eqdd.outputs.stage_log_probs`][]).

    Two static integers and two strings, so a value of this class is hashable and may sit in a static
    field. The per-level tables are tuples of Python integers (index them with a level in `0..S`).

    Attributes:
        num_classes: `K`, the data classes.
        branch_factor: `b`, the base of the digits.
        variant: `"zero"` or `"augmented"` (see the module docstring).
        parametrization: what the network outputs, `"data"` (`K` logits) or `"direct"` (`S·b`).
    """

    num_classes: int = eqx.field(static=True)
    branch_factor: int = eqx.field(static=True)
    variant: str = eqx.field(static=True, default="zero")
    parametrization: str = eqx.field(static=True, default="data")

    def __check_init__(self):
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if self.branch_factor < 2:
            raise ValueError(f"branch_factor must be at least 2, got {self.branch_factor}")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.parametrization not in PARAMETRIZATIONS:
            raise ValueError(
                f"unknown parametrization {self.parametrization!r}; "
                f"choose one of {', '.join(PARAMETRIZATIONS)}"
            )
        if self.branch_factor**self.num_stages > _INT32_MAX or self.num_input_classes > _INT32_MAX:
            raise ValueError(
                f"num_classes {self.num_classes} with branch_factor {self.branch_factor} needs integers "
                "beyond int32"
            )

    @property
    def num_stages(self) -> int:
        """`S`, the smallest integer with `b^S >= K`."""
        stages, power = 1, self.branch_factor
        while power < self.num_classes:
            stages, power = stages + 1, power * self.branch_factor
        return stages

    @property
    def divisors(self) -> tuple[int, ...]:
        """`b^(S-l)` for `l = 0..S`: a class's level-`l` prefix is `k // divisors[l]`."""
        return tuple(self.branch_factor ** (self.num_stages - level) for level in range(self.num_stages + 1))

    @property
    def counts(self) -> tuple[int, ...]:
        """How many values level `l` has, `ceil(K / b^(S-l))` for `l = 0..S` (1 at level 0, `K` at `S`)."""
        return tuple(-(-self.num_classes // divisor) for divisor in self.divisors)

    @property
    def scales(self) -> tuple[int, ...]:
        """`scale_l` of `value = offset_l + scale_l · prefix`: `b^(S-l)` ("zero") or 1 ("augmented")."""
        return self.divisors if self.variant == "zero" else (1,) * (self.num_stages + 1)

    @property
    def offsets(self) -> tuple[int, ...]:
        """`offset_l` of `value = offset_l + scale_l · prefix`, the augmented variant's index table.

        "zero": all 0. "augmented": 0 at level `S`; below it, level `S-1` starts at `K` and each lower
        level right after the one above it.
        """
        if self.variant == "zero":
            return (0,) * (self.num_stages + 1)
        offsets, start = [0], self.num_classes
        for level in range(self.num_stages - 1, -1, -1):
            offsets.append(start)
            start += self.counts[level]
        return tuple(reversed(offsets))

    @property
    def absorbing_state(self) -> int:
        """The single level-0 value, `x^(0)`: 0 ("zero") or `K' - 1` ("augmented")."""
        return self.offsets[0]

    @property
    def num_input_classes(self) -> int:
        """The values a network input can hold: `K` ("zero") or `K'` ("augmented")."""
        return self.absorbing_state + 1 if self.variant == "augmented" else self.num_classes

    @property
    def num_outputs(self) -> int:
        """The network's outputs per position: `K` for `"data"`, `S·b` for `"direct"`."""
        return self.num_classes if self.parametrization == "data" else self.num_stages * self.branch_factor


def _at(table: tuple[int, ...], level) -> Int[Array, ""]:
    return jnp.asarray(table, jnp.int32)[level]


def prefix(transitions: UpscaleTransitions, values, level):
    """The prefix `k // b^(S-level)` that level-`level` values stand for (see the module docstring)."""
    return (values - _at(transitions.offsets, level)) // _at(transitions.scales, level)


def _value(transitions: UpscaleTransitions, prefixes, level):
    return _at(transitions.offsets, level) + _at(transitions.scales, level) * prefixes


@typecheck
def level_values(
    transitions: UpscaleTransitions, x: Int[Array, "*B"], level: Int[Array, ""] | int
) -> Int[Array, "*B"]:
    """The cumulative map: the level-`l` values of data classes (the paper's `x^(l) = P̄^(l+1) x`).

    Arguments:
        transitions: the maps.
        x: data classes, in `0..K-1`.
        level: `l`, in `0..S` (`S` gives `x` back, 0 the absorbing state).

    Returns:
        The level-`l` values, int32, shaped like `x`.
    """
    return _value(transitions, x // _at(transitions.divisors, level), level).astype(jnp.int32)


@typecheck
def coarsen(
    transitions: UpscaleTransitions, values: Int[Array, "*B"], level: Int[Array, ""] | int
) -> Int[Array, "*B"]:
    """The one-stage map: level-`l` values to level `l - 1` (the paper's `x^(l-1) = P^(l) x^(l)`).

    Arguments:
        transitions: the maps.
        values: level-`l` values.
        level: `l`, in `1..S`.

    Returns:
        The level-`(l - 1)` values, int32.
    """
    parent_prefix = prefix(transitions, values, level) // transitions.branch_factor
    return _value(transitions, parent_prefix, level - 1).astype(jnp.int32)


@typecheck
def stage_digit(
    transitions: UpscaleTransitions, x: Int[Array, "*B"], stage: Int[Array, ""] | int
) -> Int[Array, "*B"]:
    """The digit of data classes that stage `s` reveals, `(x // b^(S-1-s)) mod b`.

    Arguments:
        transitions: the maps.
        x: data classes.
        stage: `s`, in `0..S-1`.

    Returns:
        Digits in `0..b-1`, int32.
    """
    digits = (x // _at(transitions.divisors, stage + 1)) % transitions.branch_factor
    return digits.astype(jnp.int32)


@typecheck
def child_values(
    transitions: UpscaleTransitions,
    parent: Int[Array, "*B"],
    digit: Int[Array, "*B"],
    stage: Int[Array, ""] | int,
) -> Int[Array, "*B"]:
    """The level-`(s + 1)` value with a given level-`s` parent and digit (what a sampled digit writes).

    Arguments:
        transitions: the maps.
        parent: level-`s` values.
        digit: digits in `0..b-1`, for which [`valid_digits`][] holds.
        stage: `s`, in `0..S-1`.

    Returns:
        The children, int32.
    """
    child = prefix(transitions, parent, stage) * transitions.branch_factor + digit
    return _value(transitions, child, stage + 1).astype(jnp.int32)


@typecheck
def valid_digits(
    transitions: UpscaleTransitions, parent: Int[Array, "*B"], stage: Int[Array, ""] | int
) -> Bool[Array, "*B b"]:
    """Which of the `b` children of each parent exist (all of them when `K` is a power of `b`).

    Arguments:
        transitions: the maps.
        parent: level-`s` values.
        stage: `s`, in `0..S-1`.

    Returns:
        A mask of shape `parent.shape + (b,)`.
    """
    first = prefix(transitions, parent, stage)[..., None] * transitions.branch_factor
    children = first + jnp.arange(transitions.branch_factor, dtype=jnp.int32)
    return children < _at(transitions.counts, stage + 1)


@typecheck
def consistent_values(
    transitions: UpscaleTransitions, parent: Int[Array, "*B"], stage: Int[Array, ""] | int
) -> Bool[Array, "*B K_in"]:
    """The level-`(s + 1)` values consistent with each parent, as a mask over the input values.

    This is the preimage of `parent` under the stage's one-stage map (the paper's `P^T x^(s)`), computed
    arithmetically over `0..num_input_classes-1`.

    Arguments:
        transitions: the maps.
        parent: level-`s` values.
        stage: `s`, in `0..S-1`.

    Returns:
        A mask of shape `parent.shape + (num_input_classes,)`.
    """
    level = stage + 1
    shifted = jnp.arange(transitions.num_input_classes, dtype=jnp.int32) - _at(transitions.offsets, level)
    scale = _at(transitions.scales, level)
    candidate = shifted // scale
    at_level = (shifted >= 0) & (shifted % scale == 0) & (candidate < _at(transitions.counts, level))
    parent_prefix = prefix(transitions, parent, stage)[..., None]
    return at_level & (candidate // transitions.branch_factor == parent_prefix)


@typecheck
def data_floor(
    transitions: UpscaleTransitions, values: Int[Array, "*B"], level: Int[Array, ""] | int
) -> Int[Array, "*B"]:
    """The smallest data class below each level-`l` value, `prefix · b^(S-l)` (to picture a level).

    For the "zero" variant this is the value itself; for "augmented" it maps the new indices back to the
    data range.

    Arguments:
        transitions: the maps.
        values: level-`l` values.
        level: `l`, in `0..S`.

    Returns:
        Data classes, int32.
    """
    return (prefix(transitions, values, level) * _at(transitions.divisors, level)).astype(jnp.int32)
