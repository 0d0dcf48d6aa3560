"""Exact oracles for tiny enumerable problems, shared by the tests."""

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from eqdd.processes import glauber


def all_states(num_positions: int, num_classes: int) -> np.ndarray:
    """Every sequence in `{0..K-1}^D`, shape `(K^D, D)`, in lexicographic order."""
    return np.array(list(itertools.product(range(num_classes), repeat=num_positions)), np.int32)


def all_orders(num_positions: int) -> np.ndarray:
    """Every permutation of `0..D-1`, shape `(D!, D)`."""
    return np.array(list(itertools.permutations(range(num_positions))), np.int32)


def state_index(x: np.ndarray, num_classes: int) -> np.ndarray:
    """The index of each sequence (last axis) in [`all_states`][]'s order."""
    weights = num_classes ** np.arange(x.shape[-1] - 1, -1, -1)
    return (np.asarray(x) * weights).sum(-1)


def random_law(rng: np.random.Generator, num_positions: int, num_classes: int) -> np.ndarray:
    """A random distribution over `{0..K-1}^D` with full support."""
    return rng.dirichlet(np.ones(num_classes**num_positions))


class TabularDenoiser(eqx.Module):
    """A "network" that returns the exact conditionals of a known joint law.

    For a corrupted sequence (absorbing token at the unknown positions), position `k` gets the log
    of `p(x_k | revealed positions)`, the other masked positions marginalised out. Revealed
    positions get a point mass on their value. The step `t` is ignored, as the exact conditionals do
    not depend on it.
    """

    states: jax.Array
    log_law: jax.Array
    num_classes: int = eqx.field(static=True)
    absorbing: int = eqx.field(static=True)

    def __init__(self, law: np.ndarray, num_positions: int, num_classes: int, dtype=jnp.float64):
        self.states = jnp.asarray(all_states(num_positions, num_classes))
        self.log_law = jnp.log(jnp.asarray(law, dtype))
        self.num_classes = num_classes
        self.absorbing = num_classes

    def __call__(self, tokens: jax.Array, t: jax.Array) -> jax.Array:
        revealed = tokens != self.absorbing
        consistent = jnp.all(jnp.where(revealed[None, :], self.states == tokens[None, :], True), axis=1)
        log_weights = jnp.where(consistent, self.log_law, -jnp.inf)
        one_hot = jax.nn.one_hot(self.states, self.num_classes, dtype=bool)  # (S, D, K)
        terms = jnp.where(one_hot, log_weights[:, None, None], -jnp.inf)
        log_marginals = jax.scipy.special.logsumexp(terms, axis=0)  # (D, K)
        return log_marginals - jax.scipy.special.logsumexp(log_marginals, axis=-1, keepdims=True)


def log2_prob(law: np.ndarray, x: np.ndarray, num_classes: int) -> float:
    return math.log2(law[state_index(x, num_classes)])


def all_policies(num_steps: int, budget: int):
    """Every policy with `budget` segments over `num_steps` steps (brute force)."""
    for rest in itertools.combinations(range(1, num_steps), budget - 1):
        yield np.array((0, *rest))


def glauber_site_kernel(kernel: str, kappa: float, vocab_law: np.ndarray) -> np.ndarray:
    """`P[a, b] = P(x_{t+1}^i = b | x_t^i = a)` of the GGM forward step, built from the draw `z ~ Π`.

    `Π` puts `κ` on `φ` and `(1 - κ)·u` on the tokens. Flip: `z = φ` keeps `a`, a token `z` replaces it
    (`K = V` classes). Replace: `z` is always written, `φ` as class `V` (`K = V + 1`).
    """
    vocab_size = len(vocab_law)
    pi = np.append((1 - kappa) * np.asarray(vocab_law, np.float64), kappa)
    if kernel == "replace":
        return np.tile(pi, (vocab_size + 1, 1))
    kernel_matrix = np.tile(pi[:vocab_size], (vocab_size, 1))
    kernel_matrix[np.arange(vocab_size), np.arange(vocab_size)] += pi[vocab_size]
    return kernel_matrix


def embed_law(law: np.ndarray, num_positions: int, vocab_size: int, num_classes: int) -> np.ndarray:
    """A law over `{0..V-1}^L` as a law over `{0..K-1}^L` (no mass on states holding a class `>= V`)."""
    embedded = np.zeros(num_classes**num_positions)
    embedded[state_index(all_states(num_positions, vocab_size), num_classes)] = law
    return embedded


def glauber_forward_laws(
    law0: np.ndarray, positions, site_kernel: np.ndarray, num_positions: int
) -> np.ndarray:
    """The exact laws of `x_0, …, x_T` over `{0..K-1}^L`, applying the site kernel at `positions[t]`."""
    num_classes = site_kernel.shape[0]
    states = all_states(num_positions, num_classes)
    laws = [np.asarray(law0, np.float64)]
    for i in positions:
        new = np.zeros_like(laws[-1])
        for b in range(num_classes):
            target = states.copy()
            target[:, i] = b
            np.add.at(new, state_index(target, num_classes), laws[-1] * site_kernel[states[:, i], b])
        laws.append(new)
    return np.array(laws)


def glauber_bayes_logits(
    law_t: np.ndarray, i: int, kernel: str, kappa: float, vocab_law: np.ndarray, num_positions: int
) -> np.ndarray:
    """The Bayes-optimal GGM classifier at one step, from the exact law of `x_t`.

    Row `state_index(input, K + 1)` holds the logits for the input `x_t` with position `i` set to the query
    token `K`; logit `b` is `log P(label 1, shown b | s) - log P(label 0, shown b | s)`. Flip: label 1 is a
    kept token (`z = φ`, mass `κ` on `b = x_t^i`), label 0 a noise token (mass `(1 - κ)·u(b)`). Replace:
    label 1 is the old token `x_t^i`, label 0 the noise draw (mass `Π(b)`). Unreachable inputs get 0.
    """
    vocab_size = len(vocab_law)
    num_classes = vocab_size + (kernel == "replace")
    if kernel == "flip":
        positive_weight, noise = kappa, (1 - kappa) * np.asarray(vocab_law, np.float64)
    else:
        positive_weight, noise = 1.0, np.append((1 - kappa) * np.asarray(vocab_law, np.float64), kappa)
    states = all_states(num_positions, num_classes)
    inputs = states.copy()
    inputs[:, i] = num_classes
    rows = state_index(inputs, num_classes + 1)
    positive = np.zeros(((num_classes + 1) ** num_positions, num_classes))
    negative = np.zeros_like(positive)
    np.add.at(positive, (rows, states[:, i]), positive_weight * law_t)
    np.add.at(negative, rows, law_t[:, None] * noise[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        logits = np.log(positive) - np.log(negative)
    return np.where(negative > 0, logits, 0.0)


class TabularClassifier(eqx.Module):
    """A GGM "network" given by a table of logits indexed by `(t, input)`; every position gets the row."""

    table: jax.Array  # (T, (K + 1)^L, K)

    def __call__(self, tokens: jax.Array, t: jax.Array) -> jax.Array:
        num_tokens = self.table.shape[2] + 1
        weights = num_tokens ** jnp.arange(tokens.shape[0] - 1, -1, -1)
        row = self.table[t, jnp.sum(tokens * weights)]
        return jnp.broadcast_to(row, (tokens.shape[0], row.shape[0]))


def glauber_reverse_laws(law_T: np.ndarray, positions, step_log_probs, num_positions: int, num_classes: int):
    """The exact law of a one-site reverse chain from `law_T` down to step 0.

    `step_log_probs(t, states)` gives, for every state `x_{t+1}` (rows of [`all_states`][]), the
    log-probabilities of the new value at `positions[t]`. Returns the laws of `x_T, …, x_0` (last: `x_0`).
    """
    states = all_states(num_positions, num_classes)
    laws = [np.asarray(law_T, np.float64)]
    for t in range(len(positions) - 1, -1, -1):
        i = positions[t]
        probs = np.exp(np.asarray(step_log_probs(t, states), np.float64))
        new = np.zeros_like(laws[-1])
        for a in range(num_classes):
            target = states.copy()
            target[:, i] = a
            np.add.at(new, state_index(target, num_classes), laws[-1] * probs[:, a])
        laws.append(new)
    return np.array(laws)


def glauber_exact_problem(process, law: np.ndarray):
    """The exact GGM problem for a data law over `{0..V-1}^L` and a `GlauberProcess`.

    Returns `(positions, laws, table)`: the visited position of each step, the exact laws of `x_0, …, x_T`
    over `{0..K-1}^L` (`(T + 1, K^L)`) and the Bayes-optimal logits of every step (`(T, (K + 1)^L, K)`,
    for [`TabularClassifier`][]).
    """
    vocab_law = np.asarray(process.vocab_law, np.float64)
    num_positions, num_classes = process.num_positions, process.num_classes
    positions = [int(glauber.position(process, t)) for t in range(process.num_steps)]
    site_kernel = glauber_site_kernel(process.kernel, process.kappa, vocab_law)
    start = embed_law(law, num_positions, len(vocab_law), num_classes)
    laws = glauber_forward_laws(start, positions, site_kernel, num_positions)
    table = np.stack(
        [
            glauber_bayes_logits(laws[t], i, process.kernel, process.kappa, vocab_law, num_positions)
            for t, i in enumerate(positions)
        ]
    )
    return positions, laws, table


def glauber_stationary_law(process) -> np.ndarray:
    """The law `ν^L` over `{0..K-1}^L` that the GGM reverse chain starts from."""
    nu = np.exp(np.asarray(glauber.noise_log_probs(process), np.float64))
    return nu[all_states(process.num_positions, process.num_classes)].prod(axis=1)


def glauber_chain_laws(process, table, start, reverse_step, temperature=1.0, fraction=1.0, top_p=1.0):
    """The exact laws of the GGM reverse chain whose every step is the library's `reverse_step`.

    `table` holds the classifier's logits per step and input (as for [`TabularClassifier`][]); step `t`
    is tempered when it is among the first `round(fraction·T)` denoising steps. Returns the laws of
    `x_T, …, x_0` over `{0..K-1}^L` (last row: `x_0`).
    """
    num_classes, num_steps = process.num_classes, process.num_steps
    positions = [int(glauber.position(process, t)) for t in range(num_steps)]
    step = jax.jit(
        jax.vmap(lambda logits, b, tau: reverse_step(process, logits, b, tau, top_p), (0, 0, None))
    )

    def step_log_probs(t, states):
        inputs = states.copy()
        inputs[:, positions[t]] = num_classes
        tau = temperature if num_steps - 1 - t < round(fraction * num_steps) else 1.0
        logits = jnp.asarray(table[t][state_index(inputs, num_classes + 1)])
        return step(logits, jnp.asarray(states[:, positions[t]]), jnp.asarray(tau, logits.dtype))

    return glauber_reverse_laws(start, positions, step_log_probs, process.num_positions, num_classes)


def upscale_reference_matrices(num_classes: int, branch_factor: int, variant: str):
    """The reference's dense downscaling matrices (`transitions.py`, reference §3.3), built by loops.

    Returns `(P, cum, absorbing)`: `P[t - 1][out, in] = 1` maps "t - 1 digits removed" to "t removed"
    (destruction order, `S` matrices of `K' x K'`; only the columns of classes reachable at that stage are
    set), `cum[0] = I` and `cum[t] = P[t - 1] @ cum[t - 1]` (`S + 1` matrices), and the absorbing state.
    The stage count comes from removing digits until one value is left, not from `b^S >= K`.
    """
    counts = [num_classes]  # values left after t removals: ceil(count / b), iterated
    while counts[-1] > 1:
        counts.append((counts[-1] - 1) // branch_factor + 1)
    num_stages = len(counts) - 1
    if variant == "zero":
        size, absorbing = num_classes, 0
        starts = [0] * (num_stages + 1)
    else:
        starts = [0, num_classes]
        for t in range(1, num_stages):
            starts.append(starts[-1] + counts[t])
        size, absorbing = starts[-1] + 1, starts[-1]
    matrices = np.zeros((num_stages, size, size))
    for t in range(1, num_stages + 1):
        if variant == "zero":
            step = branch_factor**t
            for k in range(0, num_classes, branch_factor ** (t - 1)):
                matrices[t - 1, (k // step) * step, k] = 1
        else:
            for j in range(counts[t - 1]):
                matrices[t - 1, starts[t] + j // branch_factor, starts[t - 1] + j] = 1
    cum = [np.eye(size)]
    for t in range(num_stages):
        cum.append(matrices[t] @ cum[-1])
    return matrices, np.array(cum), absorbing


class UpscaleTabularDenoiser(eqx.Module):
    """An Upscale ARDM "network" that returns the exact conditionals of a known joint law of data classes.

    Built from the reference matrices ([`upscale_reference_matrices`][]), not from the library. At stage
    `s` the input holds level `s + 1` values where `revealed` and level `s` values elsewhere; the event
    they define is `{x: level values of x match}`, and position `k` gets `log p(x_k = c | event)` over the
    `K` data classes ("data") or `log p(digit of x_k = d | event)` in row `s` of `(S, b)` ("direct", the
    other rows zero; the digit is `(c // b^(S-1-s)) mod b`). `t` is ignored.
    """

    states: jax.Array
    log_law: jax.Array
    levels: jax.Array  # (S + 1, K): the level-l value of each data class
    digits: jax.Array  # (S, K): the digit stage s reveals
    branch_factor: int = eqx.field(static=True)
    parametrization: str = eqx.field(static=True)

    def __init__(
        self, law, num_positions, num_classes, branch_factor, variant, parametrization, dtype=jnp.float64
    ):
        _, cum, _ = upscale_reference_matrices(num_classes, branch_factor, variant)
        num_stages = cum.shape[0] - 1
        # level l = S - (digits removed): cum[S - l] maps a data class to its level-l value
        self.levels = jnp.asarray(
            [cum[num_stages - level][:, :num_classes].argmax(axis=0) for level in range(num_stages + 1)]
        )
        classes = np.arange(num_classes)
        self.digits = jnp.asarray(
            [(classes // branch_factor ** (num_stages - 1 - s)) % branch_factor for s in range(num_stages)]
        )
        self.states = jnp.asarray(all_states(num_positions, num_classes))
        self.log_law = jnp.log(jnp.asarray(law, dtype))
        self.branch_factor = branch_factor
        self.parametrization = parametrization

    def __call__(self, tokens, t, revealed, stage):
        target, past = self.levels[stage + 1][self.states], self.levels[stage][self.states]
        consistent = jnp.all(jnp.where(revealed[None, :], target == tokens, past == tokens), axis=1)
        log_weights = jnp.where(consistent, self.log_law, -jnp.inf)
        num_classes = self.levels.shape[1]
        one_hot = jax.nn.one_hot(self.states, num_classes, dtype=bool)  # (states, D, K)
        log_marginals = jax.scipy.special.logsumexp(
            jnp.where(one_hot, log_weights[:, None, None], -jnp.inf), 0
        )
        log_marginals = log_marginals - jax.scipy.special.logsumexp(log_marginals, axis=-1, keepdims=True)
        if self.parametrization == "data":
            return log_marginals
        digit_one_hot = jax.nn.one_hot(self.digits[stage], self.branch_factor, dtype=bool)  # (K, b)
        log_digits = jax.scipy.special.logsumexp(
            jnp.where(digit_one_hot[None], log_marginals[:, :, None], -jnp.inf), axis=1
        )
        num_stages = self.digits.shape[0]
        rows = jnp.zeros((tokens.shape[0], num_stages, self.branch_factor), log_digits.dtype)
        return rows.at[:, stage].set(log_digits).reshape(tokens.shape[0], -1)
