"""experiments/sc09_ardm.py end to end on tiny clips written in FSDD's layout, and its runs through
`eqdd.load_run`, `eqdd sample` and `eqdd evaluate`."""

import contextlib
import io
import zipfile
from pathlib import Path

import equinox as eqx
import numpy as np
import pytest

from eqdd import cli, compression
from eqdd.config import ConfigError
from eqdd.data import audio
from eqdd.runs import load_run
from tests.scripts import help_text, load_script
from tests.test_audio import wav_bytes

experiment = load_script("experiments/sc09_ardm.py")
benchmark = load_script("benchmarks/compression_rates.py")
TINY = (
    "--clip-length 32 --width 8 --depth 2 --dilation-cycle 2 --batch-size 4 --num-steps 3 --log-every 1 "
    "--warmup-steps 1 --eval-max-chunks 4 --eval-batch-size 4 --num-samples 2 --budgets 3 --sample-budget 5 "
    "--no-progress"
).split()


@pytest.fixture(scope="module")
def fsdd_dir(tmp_path_factory):
    """Two digits by two speakers by seven takes of short tones (takes 0-4 are the test set)."""
    directory = tmp_path_factory.mktemp("fsdd")
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(directory / audio.FSDD_ARCHIVE, "w") as archive:
        for digit in range(2):
            for speaker in ("alice", "bob"):
                for take in range(7):
                    length = int(rng.integers(20, 50))
                    tone = 3000 * np.sin(np.arange(length) * (0.3 + 0.2 * digit)) + rng.normal(0, 50, length)
                    name = f"recordings/{digit}_{speaker}_{take}.wav"
                    archive.writestr(name, audio.wav_bytes(tone.astype(np.int16), 8000))
    return directory


MODELS = {
    "upscale": ["--model", "upscale", "--branch-factor", "16"],
    "oa": ["--model", "oa", "--mixture-components", "3"],
}


@pytest.fixture(scope="module")
def trained(fsdd_dir, tmp_path_factory) -> dict[str, tuple[Path, dict, str]]:
    """The tiny runs of both models, trained once for the module: directory, results, printed output."""
    runs = {}
    for name, flags in MODELS.items():
        run = tmp_path_factory.mktemp(name) / "run"
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            results = experiment.main(["--data-dir", str(fsdd_dir), "--run-dir", str(run), *flags, *TINY])
        runs[name] = run, results, printed.getvalue()
    return runs


@pytest.mark.parametrize("model", list(MODELS))
def test_main_trains_evaluates_and_writes_clips_and_pictures(fsdd_dir, trained, tmp_path, capsys, model):
    run, results, out = trained[model]
    assert "bits per 16-bit sample" in out and "DP policy" in out and "sampled 2 clips" in out
    assert "NOT SC09" in results["corpus"] and results["steps"] == 3 and 0 < results["test"]["bpd"] < 40
    stages = 4 if model == "upscale" else 1  # 2^16 = 16^4
    assert len(results["train_step_losses"]) == stages * 32
    assert [b["calls"] for b in results["budgets"].values()] == [3 * stages]
    assert results["sample_calls"] == 5 * stages
    for index in range(2):
        samples, rate = audio.read_wav((run / "samples" / f"{index}.wav").read_bytes())
        assert rate == 8000 and samples.shape == (32,)
    for picture in ("samples.png", "generation.png", "training.png"):
        assert (run / picture).stat().st_size > 1000
    if stages > 1:  # the codec's order, chosen on 2 training clips
        chosen = results["codec_order"]
        bits, order = chosen["candidate_bits"], compression.Order(chosen["order"], chosen["seed"])
        assert len(bits) == 4 and bits[order.describe()] == min(bits.values())  # striped and 3 seeded
    else:
        assert results["codec_order"] is None  # an OA-ARDM with a mixture output has no codec

    loaded = load_run(run)
    assert loaded.kind == "audio" and loaded.data_shape == (32,) and loaded.objective.num_stages == stages
    wav = tmp_path / "drawn.wav"
    cli.main(
        ["sample", "--checkpoint", str(run), "--num-samples", "2", "--budget", "4", "--output", str(wav)]
    )
    drawn, rate = audio.read_wav(wav.read_bytes())
    assert rate == 8000 and drawn.shape == (2 * 32 + 8000 // 4,)  # two clips, a quarter second between
    cli.main(["evaluate", "--checkpoint", str(run), "--data", str(run / "samples"), "--no-progress"])
    assert "bits per 16-bit sample on" in capsys.readouterr().out

    # The codec: a clip of any length (here 45 samples, not a whole number of chunks) and back, exactly;
    # an OA-ARDM with a logistic mixture has no table to code with and says so.
    clip = np.random.default_rng(0).integers(-3000, 3000, 45).astype(np.int16)
    source, packed, restored = tmp_path / "clip.wav", tmp_path / "clip.eqdd", tmp_path / "back.wav"
    source.write_bytes(audio.wav_bytes(clip, 8000))
    command = ["compress", str(source), str(packed), "--checkpoint", str(run), "--no-progress"]
    if stages == 1:
        with pytest.raises(SystemExit) as exit:
            cli.main(command)
        assert "logistic-mixture output cannot code files" in str(exit.value.code) and not packed.exists()
        return
    cli.main([*command, "--budget", "3"])
    assert "45 samples at 8,000 Hz" in capsys.readouterr().err
    cli.main(["decompress", str(packed), str(restored), "--checkpoint", str(run), "--no-progress"])
    samples, rate = audio.read_wav(restored.read_bytes())
    assert rate == 8000
    np.testing.assert_array_equal(samples, clip)

    # The benchmark's audio mode: the codec beside FLAC and the generic compressors, every row restored.
    results = benchmark.main(
        [
            *("--checkpoint", str(run), "--data-dir", str(fsdd_dir), "--num-clips", "3", "--budget", "2"),
            *("--orders", "2", "--out-dir", str(tmp_path / "bench"), "--no-progress"),
        ]
    )
    methods = [row["method"] for row in results["rows"]]
    assert methods[0] == "eqdd Upscale ARDM codec, 4x2 calls/clip" and results["num_samples"] == 3 * 32
    flac = [row for row in results["rows"] if row["method"].startswith("FLAC")]
    assert len(flac) == 2 and all(row["bps"] > 0 for row in flac)
    assert "bits/sample" in capsys.readouterr().out


def test_the_commands_refuse_audio_they_cannot_use(trained, tmp_path):
    run = trained["upscale"][0]
    fast, stereo = tmp_path / "fast.wav", tmp_path / "stereo.wav"
    fast.write_bytes(audio.wav_bytes(np.zeros(32, np.int16), 16000))
    stereo.write_bytes(wav_bytes(np.zeros(64, np.int16), 8000, channels=2))
    for source, message in (
        (fast, "at 16,000 Hz, but the run codes 8,000 Hz audio"),
        (stereo, "mono 16-bit"),
    ):
        with pytest.raises(SystemExit) as exit:
            cli.main(["compress", str(source), str(tmp_path / "out.eqdd"), "--checkpoint", str(run)])
        assert message in str(exit.value.code)
    with pytest.raises(SystemExit) as exit:
        cli.main(["sample", "--checkpoint", str(run)])
    assert "give --output FILE.wav" in str(exit.value.code)
    with pytest.raises(SystemExit) as exit:
        cli.main(["evaluate", "--checkpoint", str(run), "--data", str(fast)])
    assert "16,000 Hz; the run models 8,000 Hz audio" in str(exit.value.code)
    assert not (tmp_path / "out.eqdd").exists()


def test_bad_values_are_refused_with_the_flag_to_change():
    with pytest.raises(ConfigError) as error:
        experiment.main(
            ["--width", "30", "--branch-factor", "1", "--budgets", "5,x", "--optimizer", "muon"]
            + ["--embedding-lr-factor", "4"]
        )
    message = str(error.value)
    assert "--embedding-lr-factor scales a transformer's token embedding; the WaveNet has none" in message
    assert "--optimizer muon steps a transformer's blocks; the WaveNet trains with adamw" in message
    assert "--width must be a multiple of 4" in message
    assert "--branch-factor must be at least 2" in message
    assert "--budgets must be comma-separated positive integers" in message


def test_paper_preset_matches_the_reference():
    config = experiment.parse_config(experiment.Config, ["--preset", "paper"], experiment.PRESETS, "cpu", "")
    assert (config.dataset, config.clip_length, config.width, config.depth) == ("sc09", 16000, 256, 36)
    assert (config.dilation_cycle, config.mixture_components, config.batch_size) == (12, 30, 256)
    assert (config.learning_rate, config.warmup_steps, config.clip_norm, config.ema_decay) == (
        1e-4,
        15000,
        1000.0,
        0.995,
    )
    model, _ = eqx.filter_eval_shape(experiment.build, config, experiment.jax.random.PRNGKey(0))
    assert model.receptive_field == 3 + 2 * 3 * (2**12 - 1)  # dilations up to 2048, three cycles


def test_help_documents_every_option(capsys):
    help_text(experiment, capsys)
