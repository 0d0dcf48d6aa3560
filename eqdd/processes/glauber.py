"""The forward process of the Glauber Generative Model (Varma et al., ICLR 2025): Glauber flips.

The formulation is the one fixed in `shared/reference/ggm.md`. A sequence holds `L` tokens of a vocabulary
`X = {0..V-1}`; the noise law `Π` lives on `X ∪ {φ}` with `Π(φ) = κ` and `Π(b) = (1 - κ)·u(b)` on `X`,
where `u` is the vocabulary law (uniform or unigram). Step `t` in `0..T-1` (`T = sweeps·L`) visits one
position `i_t`, draws `z ~ Π` and changes `x^{i_t}`:

- kernel `"flip"` (the default): `z = φ` keeps the token, `z ∈ X` replaces it, so
  `P(x_{t+1}^i = b | x_t^i = a) = κ·1[a = b] + (1 - κ)·u(b)`. Sequences stay in `X`: `K = V` classes.
- kernel `"replace"`: `z` is always written, `φ` as a visible symbol, so `P(b | a) = Π(b)`. Sequences live
  in `X ∪ {φ}`: `K = V + 1` classes, `φ` is class `V`.

Both kernels have the form `P(b | a) = r·1[a = b] + (1 - r)·ν(b)` with the *retention* `r` and the
*noise law* `ν` over the `K` classes: `(r, ν) = (κ, u)` for flip and `(0, Π)` for replace. Hence the closed
form of `x_t` given `x_0` used everywhere: positions are independent and position `j`, visited `n_j(t)`
times before step `t`, holds

    P(x_t^j = c | x_0^j) = r^{n_j(t)}·1[c = x_0^j] + (1 - r^{n_j(t)})·ν(c),

i.e. for flip it still holds `x_0^j` with probability `κ^{n_j(t)}`, otherwise an independent draw from `u`;
for replace it holds `x_0^j` until its first visit and a fresh draw from `Π` after it (`0^0 = 1`). `ν` is
the stationary law of the site kernel, so `ν^L` is the prior the reverse process starts from.

Class indices: the noise draw `z` takes `V` for `φ` under both kernels; the classifier's query token (the
symbol that hides position `i_t` from the network) is `K`: `V` for flip (input vocabulary `V + 1`) and
`V + 1` for replace (inputs: tokens, `φ`, query; `V + 2` classes).

Forward-process draws use `jax.random.categorical`; its float32 Gumbel noise only affects classes more
than about 16 nats below the most likely one. Generation uses the exact sampler of
`eqdd.samplers.categorical`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray, Real

from eqdd._typing import typecheck

KERNELS = ("flip", "replace")
SCHEDULES = ("round_robin", "permutation")


class GlauberProcess(eqx.Module):
    """The configuration of the forward process; the maths is in the free functions of this module.

    The visit schedule is stored as a table: `visit_order[s]` lists the positions in the order sweep `s`
    visits them (`arange(L)` for round robin), `visit_step[s]` is its inverse (the step within sweep `s`
    at which each position is visited). The `"permutation"` schedule draws a fresh permutation per sweep
    from `schedule_seed`, so the forward and reverse processes of one `GlauberProcess` always agree.
    """

    vocab_law: Float[Array, " V"]
    visit_order: Int[Array, "S L"]
    visit_step: Int[Array, "S L"]
    kappa: float = eqx.field(static=True)
    kernel: str = eqx.field(static=True)
    schedule: str = eqx.field(static=True)
    schedule_seed: int = eqx.field(static=True)

    def __init__(
        self,
        vocab_law: Real[np.ndarray, " V"] | Real[Array, " V"],
        num_positions: int,
        num_sweeps: int = 4,
        kappa: float = 0.5,
        schedule: str = "round_robin",
        kernel: str = "flip",
        schedule_seed: int = 0,
    ):
        """**Arguments:**

        - `vocab_law`: `u`, positive weights over the `V` tokens (normalised here): `np.ones(V)` for the
            uniform law, [`eqdd.processes.unigram_law`][] for the unigram one. It is stored in JAX's default
            float dtype at construction (float64 under `jax.enable_x64`).
        - `num_positions`: the sequence length `L`.
        - `num_sweeps`: `T / L`, the number of times each position is visited (paper: 4).
        - `kappa`: `κ = Π(φ)`, in `(0, 1)` (paper: 0.5).
        - `schedule`: `"round_robin"` (`i_t = t mod L`) or `"permutation"`.
        - `kernel`: `"flip"` or `"replace"` (see the module docstring).
        - `schedule_seed`: the seed of the `"permutation"` schedule.
        """
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not 0.0 < kappa < 1.0:
            raise ValueError(
                f"kappa = Π(φ) must lie in (0, 1), got {kappa}: at 0 the flip classifier never sees a kept "
                "token, at 1 nothing is ever noised"
            )
        if num_positions < 1 or num_sweeps < 1:
            raise ValueError(
                f"need num_positions >= 1 and num_sweeps >= 1, got {num_positions}, {num_sweeps}"
            )
        weights = np.asarray(vocab_law, np.float64)
        if weights.size < 2 or not np.all(np.isfinite(weights)) or not np.all(weights > 0):
            raise ValueError("vocab_law must hold at least two finite, strictly positive weights")
        self.vocab_law = jnp.asarray(weights / weights.sum())
        if schedule == "round_robin":
            order = jnp.broadcast_to(jnp.arange(num_positions, dtype=jnp.int32), (num_sweeps, num_positions))
        else:
            keys = jax.random.split(jax.random.PRNGKey(schedule_seed), num_sweeps)
            order = jax.vmap(lambda k: jax.random.permutation(k, num_positions))(keys).astype(jnp.int32)
        self.visit_order = order
        self.visit_step = jnp.argsort(order, axis=1).astype(jnp.int32)
        self.kappa = float(kappa)
        self.kernel = kernel
        self.schedule = schedule
        self.schedule_seed = int(schedule_seed)

    @property
    def num_positions(self) -> int:
        """`L`."""
        return self.visit_order.shape[1]

    @property
    def num_sweeps(self) -> int:
        """How many times each position is visited."""
        return self.visit_order.shape[0]

    @property
    def num_steps(self) -> int:
        """`T = sweeps·L`."""
        return self.num_sweeps * self.num_positions

    @property
    def vocab_size(self) -> int:
        """`V`, the size of the data vocabulary `X`."""
        return self.vocab_law.shape[0]

    @property
    def phi_token(self) -> int:
        """The index of `φ`: `V` (the value of the noise draw `z`; a sequence symbol under "replace")."""
        return self.vocab_size

    @property
    def num_classes(self) -> int:
        """`K`, the symbols a position can hold and the classifier's logits: `V` (flip), `V + 1` (replace)."""
        return self.vocab_size + (self.kernel == "replace")

    @property
    def query_token(self) -> int:
        """The token that hides position `i_t` from the classifier: `K`."""
        return self.num_classes

    @property
    def num_input_classes(self) -> int:
        """The network's input vocabulary: `K + 1`."""
        return self.num_classes + 1

    @property
    def retention(self) -> float:
        """`r` in `P(b | a) = r·1[a = b] + (1 - r)·ν(b)`: `κ` (flip) or 0 (replace)."""
        return self.kappa if self.kernel == "flip" else 0.0


@typecheck
def unigram_law(counts: Real[np.ndarray, " V"], floor: float = 1e-6) -> Float[np.ndarray, " V"]:
    """A unigram vocabulary law from token counts, with at least `floor` mass on every token.

    The empirical law is mixed with the uniform one, `(1 - V·floor)·counts/Σcounts + floor`, so a token
    never seen (text8's unused class 0, say) keeps exactly `floor`.

    Arguments:
        counts: how often each token occurs, e.g. `np.bincount(tokens, minlength=V)`.
        floor: the smallest mass of a token, in `(0, 1/V)`.

    Returns:
        A float64 probability vector.
    """
    counts = np.asarray(counts, np.float64)
    if np.any(counts < 0) or counts.sum() <= 0:
        raise ValueError("token counts must be non-negative with a positive total")
    if not 0.0 < floor < 1.0 / counts.size:
        raise ValueError(f"floor must lie in (0, 1/V) = (0, {1.0 / counts.size:.3g}), got {floor}")
    return (1.0 - counts.size * floor) * counts / counts.sum() + floor


def _log_pi(process: GlauberProcess) -> Float[Array, " V1"]:
    """`log Π` over `X ∪ {φ}`, `φ` last."""
    log_u = jnp.log(process.vocab_law)
    kappa = jnp.asarray(process.kappa, log_u.dtype)
    return jnp.concatenate([jnp.log1p(-kappa) + log_u, jnp.log(kappa)[None]])


@typecheck
def noise_log_probs(process: GlauberProcess) -> Float[Array, " K"]:
    """`log ν`: the law of a noise token and the stationary law of a position (`u`, or `Π` for replace).

    Arguments:
        process: the forward process.

    Returns:
        Log-probabilities over the `K` classes.
    """
    return jnp.log(process.vocab_law) if process.kernel == "flip" else _log_pi(process)


@typecheck
def position(process: GlauberProcess, t: Int[Array, ""] | int) -> Int[Array, ""]:
    """`i_t`, the position visited at step `t` in `0..T-1`."""
    num_positions = process.num_positions
    return process.visit_order[t // num_positions, t % num_positions]


@typecheck
def visit_counts(process: GlauberProcess, t: Int[Array, ""] | int) -> Int[Array, " L"]:
    """`n_j(t)`: how many times each position was visited by steps `0..t-1`, for `t` in `0..T`."""
    num_positions = process.num_positions
    sweep = t // num_positions
    current = process.visit_step[jnp.minimum(sweep, process.num_sweeps - 1)]
    return (sweep + (current < t % num_positions)).astype(jnp.int32)


@typecheck
def sample_noise(process: GlauberProcess, key: PRNGKeyArray) -> Int[Array, ""]:
    """Draw `z ~ Π` over `X ∪ {φ}`; `φ` is `V`, under both kernels."""
    return jax.random.categorical(key, _log_pi(process)).astype(jnp.int32)


@typecheck
def forward_step(
    process: GlauberProcess, x: Int[Array, " L"], t: Int[Array, ""] | int, z: Int[Array, ""]
) -> Int[Array, " L"]:
    """One forward step `x_t -> x_{t+1}` with the noise draw `z`.

    Arguments:
        process: the forward process.
        x: `x_t`.
        t: the step, in `0..T-1`.
        z: the noise draw ([`eqdd.processes.glauber.sample_noise`][]); `V` is `φ`.

    Returns:
        `x_{t+1}`: `x_t` with position `i_t` kept (flip, `z = φ`) or set to `z`.
    """
    i = position(process, t)
    if process.kernel == "flip":
        new = jnp.where(z == process.phi_token, x[i], z)
    else:
        new = z
    return x.at[i].set(new.astype(x.dtype))


@typecheck
def marginal_log_probs(
    process: GlauberProcess, x0: Int[Array, " L"], t: Int[Array, ""] | int
) -> Float[Array, "L K"]:
    """`log q(x_t^j = c | x_0^j)` in closed form (module docstring), for `t` in `0..T`.

    Arguments:
        process: the forward process.
        x0: the clean sequence, tokens in `X`.
        t: the step.

    Returns:
        Per-position log-probabilities over the `K` classes; `-inf` marks impossible classes.
    """
    nu = jnp.exp(noise_log_probs(process))
    keep = (jnp.asarray(process.retention, nu.dtype) ** visit_counts(process, t))[:, None]
    return jnp.log(keep * jax.nn.one_hot(x0, process.num_classes, dtype=nu.dtype) + (1 - keep) * nu)


@typecheck
def sample_marginal(
    process: GlauberProcess, x0: Int[Array, " L"], t: Int[Array, ""] | int, key: PRNGKeyArray
) -> Int[Array, " L"]:
    """Draw `x_t ~ q(x_t | x_0)` in closed form, without simulating the steps.

    Arguments:
        process: the forward process.
        x0: the clean sequence.
        t: the step, in `0..T`.
        key: a PRNG key.

    Returns:
        `x_t`.
    """
    return jax.random.categorical(key, marginal_log_probs(process, x0, t)).astype(jnp.int32)


@typecheck
def transition_log_probs(process: GlauberProcess, b: Int[Array, ""] | int) -> Float[Array, " K"]:
    """`log P(x_{t+1}^i = b | x_t^i = a)` for every `a`: the likelihood of an observed `b`.

    Arguments:
        process: the forward process.
        b: the class observed at the visited position after the step.

    Returns:
        Log-probabilities indexed by `a` (the same for every step: the kernel is time-homogeneous).
    """
    log_nu = noise_log_probs(process)
    retention = process.retention
    same = jax.nn.one_hot(b, process.num_classes, dtype=log_nu.dtype)
    return jnp.log(retention * same + (1.0 - retention) * jnp.exp(log_nu[b]))


@typecheck
def posterior_log_probs(
    process: GlauberProcess, prior: Float[Array, " K"], b: Int[Array, ""] | int
) -> Float[Array, " K"]:
    """Bayes' rule at the visited position: `log q(a) = log prior(a) + log P(b | a)`, normalised.

    With `prior = q(x_t^i | x_0^i)` this is the forward posterior `q(x_t^i | x_{t+1}^i = b, x_0^i)`; with the
    classifier's estimate `p̂_t(· | s)` it is the reverse (heat-bath) step.

    Arguments:
        process: the forward process.
        prior: log-probabilities (up to a constant) of `x_t^i` over the `K` classes.
        b: `x_{t+1}^i`.

    Returns:
        Normalised log-probabilities over the `K` classes.
    """
    return jax.nn.log_softmax(prior + transition_log_probs(process, b))


@typecheck
def with_query(process: GlauberProcess, x: Int[Array, " L"], t: Int[Array, ""] | int) -> Int[Array, " L"]:
    """The classifier's input at step `t`: `x` with position `i_t` replaced by the query token."""
    return x.at[position(process, t)].set(process.query_token)
