"""A trained ARDM with fixed orders and a fixed policy: an exact autoregressive model the codec drives.

A scheme lists its network calls ([`Call`][eqdd.compression.schemes.Call]); each call gives, for every
position of a batch of chunks, a distribution over the symbols it codes there. The codec
([`eqdd.compression.codec`][]) replays the calls on the decoder's state, so the encoder and the decoder
give the network the same inputs by construction:

- [`OAScheme`][eqdd.compression.schemes.OAScheme]: an OA-ARDM, one order `sigma` and one policy; the
  state is the chunk with the absorbing token where nothing is decoded yet, and the symbols are the
  tokens themselves (reference §2, §4).
- [`UpscaleScheme`][eqdd.compression.schemes.UpscaleScheme]: an Upscale ARDM, one order and one policy
  row per stage; the state is the finished level `x^(s)` and the level `x^(s+1)` being built, and the
  symbols are the digits stage `s` reveals, `b` per position (reference §3.4-3.5).

Every scheme also computes the exact code length `-log2 p(x | orders, policy)` of whole chunks with
the objectives' independent implementation, which checks what the coder achieves.
"""

import abc
from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from eqdd import outputs
from eqdd._typing import Denoiser, UpscaleDenoiser
from eqdd.objectives import oa_ardm_policy_log_likelihood, upscale_policy_log_likelihood
from eqdd.policy import check_policy
from eqdd.processes import absorbing, upscale
from eqdd.processes.absorbing import AbsorbingProcess
from eqdd.processes.upscale import UpscaleTransitions


class Call(NamedTuple):
    """One network call of a scheme: stage `stage`'s segment starting at step `left`, coding the
    positions where `positions` holds; `ends_stage` marks the stage's last call."""

    stage: int
    left: int
    positions: np.ndarray
    ends_stage: bool


ORDER_KINDS = ("seeded", "striped")  # the header's order byte indexes this


class Order(NamedTuple):
    """Which order a file codes every chunk in (the same in every stage).

    - `Order("seeded", seed)`: the random permutations of [`orders_from_seed`][] under the model's
      optimal policy for the budget (reference §4-5).
    - `Order("striped")` ([`STRIPED`][]): the chunk cut into streams of `budget` positions, each coded
      left to right, one position of every stream a call ([`striped_order`][]).

    Attributes:
        kind: one of [`ORDER_KINDS`][].
        seed: the seed of a seeded order, in `0..2^32-1`; 0 for a striped one.
    """

    kind: Literal["seeded", "striped"]
    seed: int = 0

    def describe(self) -> str:
        """`striped` or `seed 7`, for messages."""
        return "striped" if self.kind == "striped" else f"seed {self.seed}"


STRIPED = Order("striped")
SEEDED = Order("seeded")  # of seed 0


def striped_order(num_positions: int, budget: int) -> tuple[Int[np.ndarray, " D"], Int[np.ndarray, " K"]]:
    """The striped order of `budget` calls: position `p` is token `p mod K` of stream `p // K` (`K` the
    budget, `ceil(D / K)` streams), and call `j` codes token `j` of every stream, so each stream is coded
    left to right with everything before it in view.

    Arguments:
        num_positions: `D`.
        budget: `K`, network calls per chunk, in `1..D`.

    Returns:
        The order `(D,)` (the step at which each position is coded) and the policy's left boundaries
        `(K,)`.

    Raises:
        ValueError: when `budget` is not in `1..D`.
    """
    if not 1 <= budget <= num_positions:
        raise ValueError(f"the budget must be in 1..{num_positions}, got {budget}")
    position = np.arange(num_positions)
    token = position % budget
    order = np.empty(num_positions, np.int32)
    order[np.lexsort((position // budget, token))] = position  # by token, then stream
    policy = np.concatenate([[0], np.cumsum(np.bincount(token, minlength=budget))[:-1]])
    return order, policy.astype(np.int32)


def orders_from_seed(seed: int, num_stages: int, num_positions: int) -> Int[np.ndarray, "S D"]:
    """The orders of candidate `seed`: stage `s` gets `sample_order(fold_in(PRNGKey(seed), s), D)`.

    Arguments:
        seed: a non-negative integer.
        num_stages: `S` (1 for an OA-ARDM).
        num_positions: `D`.

    Returns:
        `(S, D)` int32, each row a permutation of `0..D-1`.
    """
    key = jax.random.PRNGKey(seed)
    return np.stack(
        [
            np.asarray(absorbing.sample_order(jax.random.fold_in(key, s), num_positions))
            for s in range(num_stages)
        ]
    )


class Scheme(abc.ABC):
    """What the codec needs of a model with fixed orders and a fixed policy.

    Attributes:
        orders: `(S, D)`, one order per stage.
        policy: `(S, P)` left boundaries, one row per stage.
        calls: the network calls in decoding order.
        padding: the token the encoder fills a last, short chunk with (never coded).
    """

    orders: np.ndarray
    policy: np.ndarray
    calls: list[Call]
    padding: int

    def _plan_calls(self, orders: np.ndarray, policy: np.ndarray) -> None:
        if orders.ndim != 2 or policy.ndim != 2 or orders.shape[0] != policy.shape[0]:
            raise ValueError(
                f"one order and one policy row per stage are needed, got {orders.shape}, {policy.shape}"
            )
        num_positions = orders.shape[1]
        self.calls = []
        for stage, (sigma, row) in enumerate(zip(orders, policy, strict=True)):
            if not np.array_equal(np.sort(sigma), np.arange(num_positions)):
                raise ValueError("every order must be a permutation of 0..D-1")
            check_policy(row, num_positions)
            rights = np.append(row[1:], num_positions)
            for j, (left, right) in enumerate(zip(row, rights, strict=True)):
                positions = (sigma >= left) & (sigma < right)
                self.calls.append(Call(stage, int(left), positions, j == row.size - 1))
        self.orders, self.policy = orders.astype(np.int32), policy.astype(np.int32)

    @property
    def num_positions(self) -> int:
        """`D`, the chunk length."""
        return self.orders.shape[1]

    @abc.abstractmethod
    def start(self, rows: int):
        """The decoder's state before any call, for a batch of `rows` chunks."""

    @abc.abstractmethod
    def probabilities(self, state, call: Call) -> Float[np.ndarray, "B D C"]:
        """One network call: the distribution of the symbol at every position, float32."""

    @abc.abstractmethod
    def symbols(self, chunks: Int[np.ndarray, "B D"], call: Call) -> Int[np.ndarray, "B D"]:
        """What the encoder codes at every position in this call (the decoder pops it)."""

    @abc.abstractmethod
    def write(self, state, call: Call, coded: Bool[np.ndarray, "B D"], symbols: np.ndarray) -> None:
        """Put the symbols of the `coded` positions into the state (in place)."""

    @abc.abstractmethod
    def tokens(self, state) -> Int[np.ndarray, "B D"]:
        """The decoded chunks once every call is done."""

    @abc.abstractmethod
    def code_lengths(self, chunks: Int[np.ndarray, "M D"], batch_size: int = 64) -> Float[np.ndarray, " M"]:
        """`-log2 p(x | orders, policy) / D` of whole chunks, computed by the objectives (independent of
        the codec), in bits per symbol (character or sub-pixel)."""

    def _batched(self, function, chunks: np.ndarray, batch_size: int, *args) -> np.ndarray:
        batches = range(0, chunks.shape[0], batch_size)
        return np.concatenate(
            [np.asarray(function(*args, jnp.asarray(chunks[i : i + batch_size]))) for i in batches]
        )


@eqx.filter_jit
def _oa_probabilities(
    denoiser: Denoiser, x: Int[Array, "B D"], left: Int[Array, ""]
) -> Float[Array, "B D K"]:
    return outputs.oa_probs(jax.vmap(denoiser, in_axes=(0, None))(x, left))


@eqx.filter_jit
def _oa_code_lengths(denoiser, sigma, policy, process, chunks):
    return jax.vmap(lambda x: oa_ardm_policy_log_likelihood(denoiser, process, x, sigma, policy))(chunks)


class OAScheme(Scheme):
    """An OA-ARDM with one order and one policy (`S = 1`).

    Call `j` runs the network on the chunk revealed where `sigma < b_j` (the absorbing token elsewhere)
    and codes the tokens with `b_j <= sigma < b_{j+1}` over the `K` classes.

    Arguments:
        denoiser: `(x: int[D], t) -> logits[D, K]`.
        process: the absorbing process the model was trained with (its token is the mask).
        orders: `(1, D)`.
        policy: `(1, P)` left boundaries.
    """

    def __init__(self, denoiser: Denoiser, process: AbsorbingProcess, orders: np.ndarray, policy: np.ndarray):
        if orders.shape[0] != 1:
            raise ValueError(f"an OA-ARDM has one stage, got {orders.shape[0]} orders")
        self._plan_calls(orders, policy)
        self.denoiser, self.process, self.padding = denoiser, process, process.absorbing_token

    def start(self, rows: int) -> np.ndarray:
        return np.full((rows, self.num_positions), self.padding, np.int32)

    def probabilities(self, state: np.ndarray, call: Call) -> np.ndarray:
        return np.asarray(_oa_probabilities(self.denoiser, state, jnp.int32(call.left)))

    def symbols(self, chunks: np.ndarray, call: Call) -> np.ndarray:
        return chunks

    def write(self, state: np.ndarray, call: Call, coded: np.ndarray, symbols: np.ndarray) -> None:
        state[coded] = symbols

    def tokens(self, state: np.ndarray) -> np.ndarray:
        return state

    def code_lengths(self, chunks: np.ndarray, batch_size: int = 64) -> np.ndarray:
        sigma, policy = jnp.asarray(self.orders[0]), jnp.asarray(self.policy[0])
        return self._batched(_oa_code_lengths, chunks, batch_size, self.denoiser, sigma, policy, self.process)


@eqx.filter_jit
def _upscale_probabilities(
    denoiser: UpscaleDenoiser,
    transitions: UpscaleTransitions,
    current: Int[Array, "B D"],
    parent: Int[Array, "B D"],
    revealed: Bool[Array, " D"],
    stage: Int[Array, ""],
    t: Int[Array, ""],
) -> Float[Array, "B D b"]:
    output = jax.vmap(denoiser, in_axes=(0, None, None, None))(current, t, revealed, stage)
    log_probs = jax.vmap(outputs.stage_log_probs, in_axes=(None, 0, 0, None))(
        transitions, output, parent, stage
    )
    return jnp.exp(log_probs.astype(jnp.float32))


@eqx.filter_jit
def _upscale_code_lengths(denoiser, transitions, sigmas, policy, chunks):
    return jax.vmap(lambda x: upscale_policy_log_likelihood(denoiser, transitions, x, sigmas, policy))(chunks)


class UpscaleScheme(Scheme):
    """An Upscale ARDM with one order and one policy row per stage.

    Stage `s`'s call `j` runs the network on `x^(s+1)` where `sigma_s < b_j` and `x^(s)` elsewhere
    (with `revealed` and the stage) and codes, at the positions with `b_j <= sigma_s < b_{j+1}`, the
    digit of `x` that stage `s` reveals, over the `b` children of its level-`s` parent (children that
    do not exist have probability 0 and the smallest count in the table).

    Arguments:
        denoiser: `(tokens, t, revealed, stage) -> output`.
        transitions: the maps and the output parametrisation the model was trained with.
        orders: `(S, D)`.
        policy: `(S, P)` left boundaries.
    """

    def __init__(
        self,
        denoiser: UpscaleDenoiser,
        transitions: UpscaleTransitions,
        orders: np.ndarray,
        policy: np.ndarray,
    ):
        if orders.shape[0] != transitions.num_stages:
            raise ValueError(f"the process has {transitions.num_stages} stages, got {orders.shape[0]} orders")
        self._plan_calls(orders, policy)
        self.denoiser, self.transitions = denoiser, transitions
        self.padding = 0

    def start(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        level = np.full((rows, self.num_positions), self.transitions.absorbing_state, np.int32)
        return level, level.copy()  # (parent x^(s), current: x^(s+1) where decoded, x^(s) elsewhere)

    def probabilities(self, state: tuple[np.ndarray, np.ndarray], call: Call) -> np.ndarray:
        parent, current = state
        revealed = self.orders[call.stage] < call.left
        t = call.stage * self.num_positions + call.left
        stage = jnp.int32(call.stage)
        return np.asarray(
            _upscale_probabilities(
                self.denoiser,
                self.transitions,
                current,
                parent,
                revealed,
                stage,
                jnp.int32(t),
            )
        )

    def symbols(self, chunks: np.ndarray, call: Call) -> np.ndarray:
        return np.asarray(upscale.stage_digit(self.transitions, jnp.asarray(chunks), call.stage))

    def write(
        self, state: tuple[np.ndarray, np.ndarray], call: Call, coded: np.ndarray, symbols: np.ndarray
    ) -> None:
        parent, current = state
        current[coded] = np.asarray(
            upscale.child_values(
                self.transitions, jnp.asarray(parent[coded]), jnp.asarray(symbols), call.stage
            )
        )
        if call.ends_stage:
            parent[...] = current

    def tokens(self, state: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return state[1]

    def code_lengths(self, chunks: np.ndarray, batch_size: int = 64) -> np.ndarray:
        sigmas, policy = jnp.asarray(self.orders), jnp.asarray(self.policy)
        return self._batched(
            _upscale_code_lengths,
            chunks,
            batch_size,
            self.denoiser,
            self.transitions,
            sigmas,
            policy,
        )
