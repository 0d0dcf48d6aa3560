"""The Glauber Generative Model from the library: a forward process of single-token flips, a denoiser
trained by binary classification, heat-bath sampling with temperature and top-p, and zero-shot infilling.

    python examples/ggm.py                     # a few seconds on a CPU

`experiments/text8_ggm.py` is the same on text8, with checkpoints, a test bound and the sample judge.
"""

import jax
import jax.numpy as jnp
import numpy as np

from eqdd.data import text8
from eqdd.denoisers import Transformer
from eqdd.objectives import GGMObjective
from eqdd.processes import GlauberProcess, unigram_law
from eqdd.samplers import sample_ggm
from eqdd.train import TrainState, make_optimizer, make_train_step

TEXT = "the cat sat on the mat and the dog sat on the log while the bird sang in the tree "


def main(num_steps: int = 20, length: int = 32) -> dict:
    """Train for a few steps, sample and infill; returns what it printed."""
    tokens = text8.encode(TEXT * 4)
    # Π(φ) = 0.5 and T = 4 x L Glauber steps, the noise law the corpus's character frequencies
    process = GlauberProcess(
        unigram_law(np.bincount(tokens, minlength=text8.NUM_CLASSES)), num_positions=length, num_sweeps=4
    )
    model = Transformer(
        process.num_input_classes,
        process.num_classes,
        32,
        1,
        2,
        64,
        time_conditioning=True,  # the GGM's denoiser must know the step t
        conv_width=7,
        key=jax.random.PRNGKey(0),
    )
    objective = GGMObjective(process, timesteps_per_sequence=8)  # BCE loss; terms.nelbo: the bound
    optimizer = make_optimizer(learning_rate=3e-3, warmup_steps=5, clip_norm=1.0)
    state = TrainState.create(model, optimizer, jax.random.PRNGKey(1), process.num_steps)
    step = make_train_step(objective, optimizer, ema_decay=0.9)
    starts = np.random.default_rng(0).integers(0, len(tokens) - length, (num_steps, 8))
    for i in range(num_steps):
        state, metrics = step(state, np.stack([tokens[s : s + length] for s in starts[i]]).astype(np.int32))
    print(f"after {num_steps} steps: training bound {float(metrics['nelbo']):.2f} bits per character")

    key_sample, key_infill = jax.random.split(jax.random.PRNGKey(2))
    samples = sample_ggm(
        state.ema_model,
        process,
        key_sample,
        2,
        length,
        temperature=1.05,
        temperature_fraction=0.5,
        top_p=0.9,
    )
    # Zero-shot infilling: keep the first and last quarters of a chunk, regenerate the middle.
    chunk = jnp.asarray(tokens[:length], jnp.int32)
    known = (jnp.arange(length) < length // 4) | (jnp.arange(length) >= 3 * length // 4)
    middle = sample_ggm(state.ema_model, process, key_infill, 1, length, known=known, known_tokens=chunk)
    texts = [text8.decode(np.asarray(s)) for s in samples]
    infilled = text8.decode(np.asarray(middle[0]))
    for text in texts:
        print(f"sample:   {text!r}")
    print(f"infilled: {infilled!r} (kept: {text8.decode(np.asarray(chunk))!r}, first and last quarters)")
    return {"bound": float(metrics["nelbo"]), "samples": texts, "infilled": infilled, "known": known}


if __name__ == "__main__":
    main()
