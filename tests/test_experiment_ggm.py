"""experiments/text8_ggm.py end to end on a small synthetic text8-format corpus."""

import json

import jax
import numpy as np
import pytest

from eqdd.config import ConfigError
from eqdd.data import text8
from tests.scripts import TINY_RUN, help_text, load_script

experiment = load_script("experiments/text8_ggm.py")
TINY = [
    *TINY_RUN,
    *"--seq-len 32 --batch-size 4 --timesteps 2 --checkpoint-every 2 --eval-max-chunks 10".split(),
    *"--num-samples 2 --num-infills 2 --infill-keep 5".split(),
]


@pytest.mark.parametrize("kernel", ["flip", "replace"])
def test_main_trains_evaluates_samples_infills_and_writes_outputs(text8_dir, tmp_path, capsys, kernel):
    run = tmp_path / "run"
    args = ["--data-dir", str(text8_dir), "--run-dir", str(run), "--num-steps", "4", "--kernel", kernel]
    results = experiment.main([*args, "--num-sweeps", "2", *TINY])
    out = capsys.readouterr().out
    assert "test bound:" in out and "sample 1:" in out and "infilled:" in out
    assert results["steps"] == 4 and results["network_calls_per_sample"] == 64
    assert 0 < results["test"]["bpd"] < 20 and results["test"]["stderr"] > 0
    assert len(results["train_step_losses"]) == 64 and len(results["test"]["step_losses"]) == 64
    samples = (run / "samples.txt").read_text().splitlines()
    assert len(samples) == 2 and all(len(s) == 32 for s in samples)
    lines = (run / "infill.txt").read_text().splitlines()
    assert len(lines) == 4
    for original, infilled in zip(lines[::2], lines[1::2], strict=True):
        original, infilled = original.removeprefix("original: "), infilled.removeprefix("infilled: ")
        # both ends kept exactly, the middle (in brackets) sampled
        assert infilled[:5] == original[:5] and infilled[-5:] == original[-5:]
        assert infilled[5] == "[" and infilled[-6] == "]" and len(infilled) == 34
    assert 0.0 <= results["infill_match"] <= 1.0
    for name in ("metrics.jsonl", "training.png", "config.json", "results.json"):
        assert (run / name).is_file()
    assert json.loads((run / "results.json").read_text())["config"]["kernel"] == kernel


def test_the_noise_law_is_the_training_unigram_law(text8_dir):
    splits = text8.load(str(text8_dir))
    config = experiment.Config(seq_len=32)
    _, objective = experiment.build(config, experiment.noise_counts(splits.train), jax.random.PRNGKey(0))
    law = np.asarray(objective.process.vocab_law)
    counts = np.bincount(splits.train, minlength=text8.NUM_CLASSES)
    np.testing.assert_allclose(law, counts / counts.sum(), atol=1e-4)
    assert law.min() > 0  # unused classes keep a floor


def test_bad_values_are_refused_with_the_flag_to_change():
    with pytest.raises(ConfigError) as error:
        experiment.main(["--kappa", "0", "--top-p", "0", "--seq-len", "20", "--infill-keep", "10"])
    message = str(error.value)
    assert "--kappa must be in (0, 1), got 0.0" in message
    assert "--top-p must be in (0, 1], got 0.0" in message
    assert "--infill-keep (10) leaves nothing to infill" in message


def test_paper_preset_matches_the_ggm_paper():
    config = experiment.parse_config(experiment.Config, ["--preset", "paper"], experiment.PRESETS, "cpu", "")
    assert (config.depth, config.width, config.num_heads) == (24, 1024, 16)
    assert (config.batch_size, config.timesteps, config.learning_rate, config.warmup_steps) == (
        64,
        32,
        1e-4,
        8000,
    )
    assert (config.adam_b2, config.weight_decay, config.ema_decay) == (0.999, 0.0, 0.9999)
    assert (config.kappa, config.num_sweeps, config.kernel, config.schedule) == (
        0.5,
        4,
        "flip",
        "round_robin",
    )


def test_help_documents_every_option(capsys):
    help_text(experiment, capsys)
