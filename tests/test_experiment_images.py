"""experiments/cifar10_ardm.py end to end on tiny images written in Fashion-MNIST's IDX format."""

import gzip

import numpy as np
import pytest
from PIL import Image

from eqdd import compression
from eqdd.config import ConfigError
from tests.scripts import help_text, load_script

experiment = load_script("experiments/cifar10_ardm.py")
TINY = (
    "--width 8 --num-res-blocks 1 --batch-size 4 --num-steps 3 --log-every 1 --checkpoint-every 2 "
    "--warmup-steps 1 --eval-max-chunks 4 --eval-batch-size 4 --num-samples 2 --budgets 3 --no-progress"
).split()


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """Blobs on a dark background, 6x5 pixels, in the IDX files Fashion-MNIST ships."""
    directory = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(0)
    for name, count in (("train-images-idx3-ubyte.gz", 40), ("t10k-images-idx3-ubyte.gz", 8)):
        pictures = (rng.random((count, 6, 5)) < 0.3) * rng.integers(100, 256, (count, 6, 5))
        header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in pictures.shape)
        (directory / name).write_bytes(gzip.compress(header + pictures.astype(np.uint8).tobytes()))
    return directory


@pytest.mark.parametrize(
    "model_flags",
    [
        ["--model", "oa", "--codec-orders", "0"],
        ["--model", "upscale", "--branch-factor", "16", "--parametrization", "direct"],
    ],
    ids=["oa", "upscale"],
)
def test_main_trains_evaluates_and_draws_pictures(image_dir, tmp_path, capsys, model_flags):
    run = tmp_path / "run"
    results = experiment.main(["--data-dir", str(image_dir), "--run-dir", str(run), *model_flags, *TINY])
    out = capsys.readouterr().out
    assert "bits per dimension" in out and "DP policy" in out and "sampled 2 images" in out
    assert results["steps"] == 3 and 0 < results["test"]["bpd"] < 20
    stages = 1 if model_flags[1] == "oa" else 2  # 256 = 16^2: two stages
    assert len(results["train_step_losses"]) == stages * 30
    assert [b["calls"] for b in results["budgets"].values()] == [3 * stages]
    assert results["sample_calls"] == min(100, 30) * stages
    chosen = results["codec_order"]  # the order `eqdd compress` uses, chosen on 4 training images
    if stages == 1:
        assert chosen is None  # --codec-orders 0
    else:
        bits = chosen["candidate_bits"]
        order = compression.Order(chosen["order"], chosen["seed"])
        assert chosen["num_chunks"] == 4 and len(bits) == 6 and bits[order.describe()] == min(bits.values())
    with Image.open(run / "samples.png") as grid, Image.open(run / "generation.png") as stages_picture:
        assert grid.size[0] > 10 and stages_picture.size[0] > grid.size[0] // 2
    for name in ("metrics.jsonl", "training.png", "results.json", "config.json"):
        assert (run / name).is_file()
    if stages == 1:  # resumed (already trained) without samples: no sampling calls are reported
        again = experiment.main(
            ["--data-dir", str(image_dir), "--run-dir", str(run), *model_flags, *TINY, "--num-samples", "0"]
        )
        assert again["steps"] == 3 and again["sample_calls"] == 0
        assert "sampled" not in capsys.readouterr().out


def test_bad_values_are_refused_with_the_flag_to_change():
    with pytest.raises(ConfigError) as error:
        experiment.main(
            ["--width", "30", "--branch-factor", "1", "--budgets", "5,x", "--optimizer", "muon"]
            + ["--embedding-lr-factor", "4"]
        )
    message = str(error.value)
    assert "--embedding-lr-factor scales a transformer's token embedding; the U-Net has none" in message
    assert "--optimizer muon steps a transformer's blocks; the U-Net trains with adamw" in message
    assert "--width must be a multiple of 4" in message
    assert "--branch-factor must be at least 2" in message
    assert "--budgets must be comma-separated positive integers" in message


def test_paper_preset_matches_the_reference():
    config = experiment.parse_config(experiment.Config, ["--preset", "paper"], experiment.PRESETS, "cpu", "")
    assert (config.dataset, config.width, config.num_res_blocks, config.batch_size) == (
        "cifar10",
        256,
        32,
        128,
    )
    assert (config.learning_rate, config.clip_norm, config.ema_decay, config.augment) == (
        1e-4,
        100.0,
        0.9999,
        True,
    )


def test_help_documents_every_option(capsys):
    help_text(experiment, capsys)
