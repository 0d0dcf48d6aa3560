"""What the text8 runs share: the data and transformer options, the data, and the evaluation.

[`eqdd.runs.text8_oaardm`][] and [`eqdd.runs.text8_ggm`][] build on it.
"""

import dataclasses

import jax
import numpy as np

from eqdd.config import non_negative, option, positive
from eqdd.data import pipeline, text8
from eqdd.denoisers import Transformer
from eqdd.denoisers.transformer import ACTIVATIONS, bfloat16_matmuls
from eqdd.runs import session
from eqdd.runs.session import TrainingConfig
from eqdd.train.evaluate import BoundReport

# The paper's text8 network and optimiser (ARDM paper, §7.1).
PAPER = dict(
    chars_per_token=1,
    conv_width=0,
    mlp_conv=False,
    optimizer="adamw",
    rotary=False,
    activation="gelu",
    lr_schedule="constant",
    width=768,
    depth=12,
    num_heads=12,
    mlp_width=3072,
    batch_size=512,
    num_steps=3_000_000,
    learning_rate=5e-4,
    warmup_steps=5000,
    clip_norm=0.25,
    ema_decay=0.995,
    log_every=100,
    checkpoint_every=5000,
    eval_passes=4,
    eval_batch_size=200,
    num_samples=8,
)


MAX_SEQ_LEN = 16_384
ACTIVATION_HELP = "the MLPs' activation (relu2: squared ReLU)"
MLP_CONV_HELP = "a second convolution of --conv-width before each block's MLP"
MATMULS_HELP = (
    "the blocks' matrix products in training, forward and backward: float32, or bfloat16 inputs "
    "accumulated in float32 (faster on CPUs with AVX-512 BF16 or AMX units); the parameters, the "
    "optimiser and every evaluation stay float32"
)


@dataclasses.dataclass(frozen=True)
class Text8Config(TrainingConfig):
    """The training options plus the text8 data and the transformer."""

    data_dir: str | None = option(
        None, "directory with text8.zip or text8; else $EQDD_DATA_DIR, else the cache (downloads once)"
    )
    seq_len: int = option(250, "characters per chunk D (250 as in the paper; 256 for other papers)", positive)
    chars_per_token: int = option(
        1,
        "characters per model token: 1 (the paper's), or 2 (pairs: 729 classes, half the positions)",
        choices=(1, 2),
    )
    width: int = option(128, "transformer width", positive)
    depth: int = option(2, "transformer blocks", positive)
    num_heads: int = option(4, "attention heads", positive)
    mlp_width: int = option(512, "hidden width of each MLP", positive)
    conv_width: int = option(
        7,
        "width of a residual depthwise convolution before each block's attention (odd; 0: none)",
        non_negative,
    )
    mlp_conv: bool = option(False, MLP_CONV_HELP)
    rotary: bool = option(False, "rotary position embeddings instead of absolute sinusoidal features")
    activation: str = option("gelu", ACTIVATION_HELP, choices=tuple(ACTIVATIONS))
    qk_norm: bool = option(False, "RMS-normalise each head's queries and keys (learned gains)")
    zero_init: bool = option(False, "start each block's attention output and MLP output layers at zero")
    gated_mlp: bool = option(
        False, "gate each MLP's activations by a second linear map of its input (about 3/2 its parameters)"
    )
    matmuls: str = option("float32", MATMULS_HELP, choices=("float32", "bfloat16"))

    RESUMABLE = TrainingConfig.RESUMABLE | {"data_dir", "matmuls"}
    FINGERPRINT_NEUTRAL = TrainingConfig.FINGERPRINT_NEUTRAL | {
        "qk_norm",
        "zero_init",
        "matmuls",
        "gated_mlp",
        "chars_per_token",
    }
    LEGACY = TrainingConfig.LEGACY | {
        "conv_width": 0,
        "mlp_conv": False,
        "rotary": False,
        "activation": "gelu",
        "qk_norm": False,
        "zero_init": False,
        "matmuls": "float32",
        "gated_mlp": False,
        "chars_per_token": 1,
    }

    @property
    def num_positions(self) -> int:
        """`D` of the model: the tokens of one chunk (`seq_len / chars_per_token`)."""
        return self.seq_len // self.chars_per_token

    def compute(self):
        """`--matmuls bfloat16`: the blocks' products in bfloat16 ([`bfloat16_matmuls`][]); else as stored."""
        return bfloat16_matmuls if self.matmuls == "bfloat16" else None

    def cross_checks(self) -> list[str]:
        problems = super().cross_checks()
        if self.seq_len > MAX_SEQ_LEN:
            problems.append(
                f"--seq-len must be at most {MAX_SEQ_LEN:,} (attention holds seq_len² scores per head), "
                f"got {self.seq_len:,}"
            )
        if self.seq_len % self.chars_per_token:
            problems.append(
                f"--seq-len ({self.seq_len}) must be a multiple of --chars-per-token ({self.chars_per_token})"
            )
        if self.width % self.num_heads:
            problems.append(f"--width ({self.width}) must be divisible by --num-heads ({self.num_heads})")
        if self.conv_width and self.conv_width % 2 == 0:
            problems.append(f"--conv-width must be 0 or odd, got {self.conv_width}")
        if self.mlp_conv and not self.conv_width:
            problems.append("--mlp-conv repeats the convolution of --conv-width, which is 0; set a width")
        if self.rotary and (self.width // self.num_heads) % 2:
            problems.append(
                "--rotary needs an even head width (--width / --num-heads), "
                f"got {self.width // self.num_heads}"
            )
        if self.width % 2:
            problems.append(f"--width must be even for the sinusoidal position features, got {self.width}")
        return problems


def transformer(
    config: Text8Config, num_input_classes: int, num_classes: int, time_conditioning: bool, key: jax.Array
) -> Transformer:
    """The transformer the options describe."""
    return Transformer(
        num_input_classes,
        num_classes,
        config.width,
        config.depth,
        config.num_heads,
        config.mlp_width,
        time_conditioning,
        config.attention,
        config.conv_width,
        config.rotary,
        config.activation,
        config.mlp_conv,
        config.qk_norm,
        config.zero_init,
        config.gated_mlp,
        key=key,
    )


def per_character(estimate, chars_per_token: int):
    """A bound estimator in bits per character from one in bits per model token (the same for single
    characters): what every text figure is reported in, whatever the tokens. `L_t` is left as it is."""
    if chars_per_token == 1:
        return estimate

    def scaled(model, x, t, key):
        terms = estimate(model, x, t, key)
        return terms._replace(nelbo=terms.nelbo / chars_per_token)

    return scaled


def chunks_of(config: Text8Config, tokens: np.ndarray) -> np.ndarray:
    """Character tokens cut into chunks of `seq_len` characters (the rest dropped), as model tokens
    `(N, num_positions)`."""
    return text8.group(pipeline.eval_chunks(tokens, config.seq_len), config.chars_per_token)


def load(config: Text8Config) -> text8.Text8Splits:
    """The corpus, located as the options and environment say, described on stdout."""
    splits = text8.load(config.data_dir)
    print(splits.describe(), flush=True)
    return splits


def training_batches(config: Text8Config, splits: text8.Text8Splits):
    """The checkpointable iterator of training batches."""
    crops = pipeline.training_batches(splits.train, config.seq_len, config.batch_size, config.seed)
    if config.chars_per_token > 1:  # crops start at any character, so every grouping is seen
        crops = crops.map(lambda batch: text8.group(batch, config.chars_per_token))
    return pipeline.iterate(crops, splits.train)


def test_chunks(config: Text8Config, splits: text8.Text8Splits) -> np.ndarray:
    """The test split in chunks of `seq_len` characters as model tokens (the first `eval_max_chunks` when
    that is set)."""
    chunks = chunks_of(config, splits.test)
    return chunks[: config.eval_max_chunks] if config.eval_max_chunks else chunks


def evaluate(
    config: Text8Config,
    estimate,
    model,
    splits: text8.Text8Splits,
    num_diffusion_steps: int,
    key: jax.Array,
) -> tuple[BoundReport, float]:
    """The test bound in bits per character with its standard error, printed; and the seconds it took."""
    note = "" if splits.standard else "; NON-STANDARD corpus, not comparable with papers"
    return session.evaluate(
        config,
        per_character(estimate, config.chars_per_token),
        model,
        test_chunks(config, splits),
        num_diffusion_steps,
        key,
        "bits per character",
        note,
    )
