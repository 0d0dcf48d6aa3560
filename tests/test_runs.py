"""`eqdd.load_run` opens every kind of run; `eqdd sample` and `eqdd evaluate` use them."""

import io
import json
import re
import shutil
from pathlib import Path

import chex
import jax
import numpy as np
import pytest
from PIL import Image

import eqdd
from eqdd import cli
from eqdd.compression import segments
from eqdd.config import ConfigError, parse_config
from eqdd.data import text8
from eqdd.runs import ModelFileError, codec, inference
from eqdd.train import Checkpointer, evaluate_bound
from tests.scripts import TINY_RUN, load_script, saved_state

oaardm = load_script("experiments/text8_oaardm.py")
ggm = load_script("experiments/text8_ggm.py")
TINY = [*TINY_RUN, *"--seq-len 16 --batch-size 4 --num-steps 3 --eval-max-chunks 2 --num-samples 0".split()]


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory, text8_dir) -> tuple[Path, Path]:
    """Tiny trained runs of the text8 OA-ARDM and GGM experiments, on a copy of the corpus that is
    deleted afterwards (so nothing can quietly read it back)."""
    root = tmp_path_factory.mktemp("text_runs")
    data = root / "data"
    shutil.copytree(text8_dir, data)
    common = ["--data-dir", str(data), *TINY]
    oaardm.main(["--run-dir", str(root / "oa"), *common, "--codec-orders", "0"])
    ggm.main(
        [
            "--run-dir",
            str(root / "ggm"),
            *common,
            "--timesteps",
            "2",
            "--num-infills",
            "0",
            "--infill-keep",
            "2",
        ]
    )
    shutil.rmtree(data)
    return root / "oa", root / "ggm"


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory, text8_dir) -> Path:
    """A tiny trained text8 OA-ARDM of character pairs (`--chars-per-token 2`)."""
    run = tmp_path_factory.mktemp("pair_run") / "oa"
    oaardm.main(["--run-dir", str(run), "--data-dir", str(text8_dir), *TINY, "--chars-per-token", "2"])
    return run


def test_a_run_of_character_pairs_samples_evaluates_infills_whole_pairs_and_codes_files(
    pair_run, text8_dir, tmp_path, capsys
):
    run = eqdd.load_run(pair_run)
    assert run.data_shape == (8,) and run.num_steps == 8 and run.model.head.weight.shape[0] == 27 * 27
    out, _ = eqdd_command(capsys, "sample", "--checkpoint", pair_run, "--num-samples", 3)
    lines = out.splitlines()
    assert len(lines) == 3 and all(len(line) == 16 and set(line) <= set(text8.ALPHABET) for line in lines)
    out, _ = eqdd_command(
        capsys, "sample", "--checkpoint", pair_run, "--num-samples", 2, "--infill", "th__at"
    )
    assert all(line[:2] == "th" and line[4:6] == "at" for line in out.splitlines())
    assert "must give or leave out ('_') each group whole" in fails(
        capsys, "sample", "--checkpoint", pair_run, "--infill", "the_cat_"
    )
    # the bound in bits per character: the model's bits per pair, halved, on the same chunks and key
    text = tmp_path / "in.txt"
    text.write_bytes(b"the cat sat on the mat and the dog ran " * 4)  # 156 characters: 9 chunks of 16
    out, _ = eqdd_command(capsys, "evaluate", "--checkpoint", pair_run, "--data", text, "--passes", 2)
    match = re.match(
        r"(\d+\.\d+) ± \d+\.\d+ bits per character on .*in\.txt: 9 examples of 16, 2 passes", out
    )
    assert match, out
    pairs = text8.group(text8.encode(text.read_bytes())[: 9 * 16].reshape(9, 16), 2)
    per_pair = evaluate_bound(
        run.objective.estimate,
        run.model,
        pairs,
        8,
        passes=2,
        batch_size=100,
        key=jax.random.PRNGKey(0),
        progress=False,
    )
    assert float(match[1]) == pytest.approx(per_pair.bpd / 2, abs=1e-4)
    # the codec codes pairs: any text, of odd length too, with the order the run chose on training data
    chosen = json.loads((pair_run / "results.json").read_text())["codec_order"]
    assert chosen["fingerprint"] == codec.codec_model(run).fingerprint.hex()
    inputs = {
        "odd.txt": b"the cat sat on the mat " * 3,  # 69 characters of the text8 alphabet
        "ordinary.txt": b"The cat sat; the DOG ran.\n" * 3 + b"End",  # its projection: 75 characters
    }
    for name, original in inputs.items():
        (tmp_path / name).write_bytes(original)
        eqdd_command(capsys, "compress", tmp_path / name, tmp_path / f"{name}.z", "--checkpoint", pair_run)
        eqdd_command(
            capsys, "decompress", tmp_path / f"{name}.z", tmp_path / name, "--checkpoint", pair_run, "-f"
        )
        assert (tmp_path / name).read_bytes() == original
    # what pairs do not do: the GGM
    with pytest.raises(ConfigError, match="the GGM models single characters"):
        parse_config(ggm.Config, ["--chars-per-token", "2"], ggm.PRESETS, "cpu", "")


def test_the_codec_benchmark_measures_a_run_of_pairs_in_bits_per_character(pair_run, text8_dir, tmp_path):
    rates = load_script("benchmarks/compression_rates.py")
    options = "--num-chars 330 --budget 4 --orders 2 --order-chunks 2 --batch-size 8 --matmuls float32"
    results = rates.main(
        [
            *("--checkpoint", str(pair_run), "--data-dir", str(text8_dir), "--no-progress"),
            *options.split(),
            *("--out-dir", str(tmp_path / "out")),
        ]
    )
    assert results["num_chars"] == 320 and results["num_positions"] == 8  # 20 chunks of 8 pairs
    rows = {r["method"]: r for r in results["rows"]}
    codec_row = rows["eqdd OA-ARDM codec, 4 calls/chunk + match model"]  # the default, as eqdd compress
    exact = rows["exact code length -log2 p(x | orders, policy)"]  # of the network alone
    assert 0 < 8 * codec_row["bytes"] < exact["bpc"] * 320 + 8 * (results["header_bytes"] + 12)
    # per character: a barely trained model of 729 classes costs about log2(729) / 2 = 4.75 bits each
    per_character = [exact["bpc"], rows["DP planned cost of seeded orders (training L_t)"]["bpc"]]
    candidates = results["order_candidates_train_bpc"]
    assert list(candidates) == ["striped", "seed 0", "seed 1"]
    assert all(3 < bits < 6 for bits in [*per_character, *candidates.values()])


def test_load_run_opens_every_kind_of_run(text_runs, image_runs):
    expected = {
        text_runs[0]: ("text8_oaardm", "text", (16,), 16),
        text_runs[1]: ("text8_ggm", "text", (16,), 16),
        image_runs[0]: ("cifar10_ardm", "images", (28, 28, 1), 784),
        image_runs[1]: ("cifar10_ardm", "images", (28, 28, 1), 2 * 784),
    }
    for run_dir, (experiment, kind, shape, num_steps) in expected.items():
        run = eqdd.load_run(run_dir)
        assert (run.experiment, run.kind, run.data_shape, run.num_steps) == (
            experiment,
            kind,
            shape,
            num_steps,
        )
        assert run.run_dir == run_dir and run.step == (3 if kind == "text" else 0)  # images: untrained
        assert len(run.step_losses.values) == num_steps
    assert isinstance(eqdd.load_run(text_runs[0]).config, oaardm.Config)


def test_a_ggm_run_keeps_its_noise_law_and_needs_no_data(text_runs, text8_dir):
    # the corpus the run trained on is gone (text_runs deleted it); the law was saved with the run
    law = np.asarray(eqdd.load_run(text_runs[1]).objective.process.vocab_law)
    counts = np.bincount(text8.load(str(text8_dir)).train, minlength=text8.NUM_CLASSES)
    np.testing.assert_allclose(law, counts / counts.sum(), atol=1e-4)


def _copy_with_metadata(run_dir: Path, target: Path, change) -> Path:
    state, metadata = saved_state(run_dir)
    checkpointer = Checkpointer(target / "checkpoints")
    checkpointer.save(int(state.step), state, change(metadata))
    checkpointer.close()
    return target


def test_unknown_experiments_missing_checkpoints_and_older_runs(text_runs, text8_dir, tmp_path):
    unknown = _copy_with_metadata(
        text_runs[0], tmp_path / "unknown", lambda m: {**m, "experiment": "sc09_audio"}
    )
    with pytest.raises(ConfigError, match="belongs to the experiment 'sc09_audio', which this version"):
        eqdd.load_run(unknown)
    with pytest.raises(FileNotFoundError, match="holds no checkpoint; give the --run-dir of a run of"):
        eqdd.load_run(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()

    # a GGM run saved before names and noise counts were kept: recognised by its settings, its law read
    # from its training data (here moved to where its config says it was)
    def older(metadata):
        return {"config": metadata["config"], "data_iterator": metadata["data_iterator"]}

    legacy = _copy_with_metadata(text_runs[1], tmp_path / "legacy", older)
    shutil.copytree(text8_dir, eqdd.runs.load_config(text_runs[1]).data_dir)
    try:
        run = eqdd.load_run(legacy)
        assert run.experiment == "text8_ggm"
        np.testing.assert_array_equal(
            run.objective.process.vocab_law, eqdd.load_run(text_runs[1]).objective.process.vocab_law
        )
    finally:
        shutil.rmtree(eqdd.runs.load_config(text_runs[1]).data_dir)


def eqdd_command(capsys, *args) -> tuple[str, str]:
    cli.main([*map(str, args), *(["--no-progress"] if args[0] != "export" else [])])
    captured = capsys.readouterr()
    return captured.out, captured.err


def fails(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exit:
        cli.main([*map(str, args), *(["--no-progress"] if args[0] != "export" else [])])
    assert isinstance(exit.value.code, str)
    return exit.value.code + capsys.readouterr().err


def test_sample_prints_text_and_infills_a_template(text_runs, tmp_path, capsys):
    for run_dir in text_runs:
        out, err = eqdd_command(
            capsys, "sample", "--checkpoint", run_dir, "--num-samples", 3, "--batch-size", 2
        )
        lines = out.splitlines()
        assert len(lines) == 3 and all(len(line) == 16 for line in lines)
        assert "compiling the sampler" in err
        out, _ = eqdd_command(
            capsys, "sample", "--checkpoint", run_dir, "--num-samples", 2, "--infill", "the_cat_"
        )
        for line in out.splitlines():
            assert line[:3] == "the" and line[4:7] == "cat" and len(line) == 16
    # a budget of calls, written to a file, never over an existing one unasked
    target = tmp_path / "samples.txt"
    eqdd_command(capsys, "sample", "--checkpoint", text_runs[0], "--budget", 4, "--output", target)
    assert len(target.read_text().splitlines()) == 4
    assert "already exists; use --force" in fails(
        capsys, "sample", "--checkpoint", text_runs[0], "--output", target
    )
    eqdd_command(
        capsys,
        "sample",
        "--checkpoint",
        text_runs[0],
        "--budget",
        3,
        "--infill",
        "a_b",
        "--output",
        target,
        "-f",
    )
    assert all(line[0] == "a" and line[2] == "b" for line in target.read_text().splitlines())


def test_sample_refuses_what_a_run_cannot_do(text_runs, image_runs, capsys):
    cases = [
        ((text_runs[1], "--budget", 4), "has no step budget: its sampler and bound take its T = 16 steps"),
        ((text_runs[0], "--infill", "x" * 17), "--infill has 17 characters; the run's sequences have 16"),
        ((text_runs[0], "--infill", "Hello"), "--infill must hold lowercase a-z, spaces and '_'"),
        ((text_runs[0], "--infill", "x" * 16), "--infill leaves nothing to sample"),
        ((text_runs[0], "--num-samples", 0), "--num-samples must be at least 1"),
        ((image_runs[0],), "writes its samples as a PNG grid: give --output"),
        ((image_runs[1], "--infill", "a_", "--output", "x.png"), "--infill is for text runs"),
    ]
    for (run_dir, *options), message in cases:
        assert message in fails(capsys, "sample", "--checkpoint", run_dir, *options)


def test_sample_writes_images_as_a_png_grid(image_runs, tmp_path, capsys):
    for run_dir in image_runs:
        target = tmp_path / f"{run_dir.name}.png"
        eqdd_command(
            capsys, "sample", "--checkpoint", run_dir, "--num-samples", 2, "--budget", 2, "--output", target
        )
        with Image.open(target) as grid:
            assert grid.mode == "L" and grid.width > 2 * 28


def test_evaluate_measures_the_bound_on_a_text_file_or_an_image_folder(
    text_runs, image_runs, tmp_path, capsys
):
    text = tmp_path / "in.txt"
    text.write_bytes(b"the cat sat on the mat and the dog ran " * 4)  # 156 characters: 9 chunks of 16
    for run_dir in text_runs:
        out, _ = eqdd_command(capsys, "evaluate", "--checkpoint", run_dir, "--data", text, "--passes", 3)
        match = re.match(
            r"(\d+\.\d+) ± (\d+\.\d+) bits per character on .*in\.txt: 9 examples of 16, 3 passes", out
        )
        assert match, out
        run = eqdd.load_run(run_dir)
        chunks = text8.encode(text.read_bytes())[: 9 * 16].reshape(9, 16).astype(np.int32)
        report, _ = inference.evaluate(
            run, chunks, passes=3, batch_size=100, key=jax.random.PRNGKey(0), progress=False
        )
        assert float(match[1]) == pytest.approx(report.bpd, abs=1e-4) and float(match[2]) > 0
    out, _ = eqdd_command(capsys, "evaluate", "--checkpoint", text_runs[0], "--data", text, "--budget", 4)
    assert "the DP policy of 4 calls (4 network calls per example)" in out
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.png", "sub/c.png"):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(buffer, "PNG")
        (folder / name).write_bytes(buffer.getvalue())
    (folder / "notes.txt").write_text("not an image")
    for run_dir, calls in zip(image_runs, (784, 2 * 784), strict=True):
        out, _ = eqdd_command(capsys, "evaluate", "--checkpoint", run_dir, "--data", folder, "--passes", 1)
        assert (
            f"bits per dimension on {folder}: 3 examples of 784, 1 passes, its full bound ({calls:,}" in out
        )


def test_evaluate_refuses_data_it_cannot_use(text_runs, image_runs, tmp_path, capsys):
    (tmp_path / "short.txt").write_bytes(b"too short")
    (tmp_path / "newline.txt").write_bytes(b"a cat\nsat on the mat and on the dog")
    colour = tmp_path / "colour"
    colour.mkdir()
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(colour / "x.png")
    (tmp_path / "empty").mkdir()
    cases = [
        ((text_runs[0], "--data", tmp_path / "short.txt"), "has 9 characters, fewer than one chunk of 16"),
        ((text_runs[0], "--data", tmp_path / "newline.txt"), r"outside the text8 alphabet"),
        ((text_runs[1], "--budget", 2), "has no step budget"),
        (
            (image_runs[0], "--data", colour),
            r"x\.png is \(28, 28, 3\) \(height, width, channels\); the run models \(28, 28, 1\)",
        ),
        ((image_runs[0], "--data", tmp_path / "empty"), "holds no image files"),
        (
            (image_runs[0], "--data", tmp_path / "short.txt"),
            "an image run is evaluated on a folder of images",
        ),
        ((text_runs[0], "--passes", 0), "--passes must be at least 1"),
    ]
    for (run_dir, *options), message in cases:
        assert re.search(message, fails(capsys, "evaluate", "--checkpoint", run_dir, *options)), message


def test_a_runs_config_json_names_its_experiment(text_runs):
    saved = json.loads((text_runs[1] / "config.json").read_text())
    assert saved["experiment"] == "text8_ggm" and saved["config"]["seq_len"] == 16
    assert len(saved["rebuild"]["noise_counts"]) == text8.NUM_CLASSES


def test_a_model_file_opens_like_its_run_without_the_run_or_the_data(text_runs, image_runs, tmp_path, capsys):
    for run_dir in (*text_runs, *image_runs):
        target = tmp_path / f"{run_dir.parent.name}-{run_dir.name}.eqdd-model"
        eqdd_command(capsys, "export", target, "--checkpoint", run_dir)
        run, exported = eqdd.load_run(run_dir), eqdd.load_run(target)
        chex.assert_trees_all_equal(
            (run.model, run.step_losses), (exported.model, exported.step_losses), strict=True
        )
        assert exported.config == run.config
        assert (exported.experiment, exported.data_shape, exported.step) == (
            run.experiment,
            run.data_shape,
            run.step,
        )
        assert eqdd.runs.load_config(target) == run.config
        if run.experiment != "text8_ggm":  # the same codec model, to the fingerprint
            assert codec.codec_model(exported).fingerprint == codec.codec_model(run).fingerprint
    assert "already exists; use --force" in fails(capsys, "export", target, "--checkpoint", image_runs[1])


def test_a_damaged_model_file_is_refused_before_anything_is_built(text_runs, tmp_path):
    good = eqdd.runs.save_model(eqdd.load_run(text_runs[0]), tmp_path / "good.eqdd-model")
    data = good.read_bytes()
    newer = data.replace(b'"format": 1', b'"format": 9', 1)
    cases = {
        "flipped": (
            data[:-5] + bytes([data[-5] ^ 1]) + data[-4:],
            "is damaged: its arrays do not match their checksum",
        ),
        "truncated": (data[:-7], "is truncated or damaged"),
        "header": (data.replace(b'{"format"', b'["format"', 1), "is damaged: its header cannot be read"),
        "other": (b"PK\x03\x04" + data, "is not an eqdd model file"),
        "newer": (newer, "has format 9, newer than this eqdd's"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelFileError, match=message):
            eqdd.load_run(tmp_path / name)


def test_a_compressed_file_outlives_further_training(text8_dir, tmp_path, capsys):
    # compress with a run, train the run on (its checkpoints rotate past the compressing one), compress
    # again: each file decompresses exactly, with the model the run kept for it
    run_dir = tmp_path / "run"
    train = ["--data-dir", str(text8_dir), "--run-dir", str(run_dir), *TINY, "--codec-orders", "0"]
    oaardm.main(train)
    text = tmp_path / "in.txt"
    text.write_bytes(b"the dog sat on the cat and ran " * 3)
    _, err = eqdd_command(
        capsys, "compress", text, tmp_path / "first.z", "--checkpoint", run_dir, "--budget", 4
    )
    assert f"kept the model it needs for decompression in {run_dir / 'models'}" in err
    oaardm.main([*train, "--num-steps", "9", "--checkpoint-every", "2"])
    eqdd_command(capsys, "compress", text, tmp_path / "second.z", "--checkpoint", run_dir, "--budget", 4)
    kept = sorted((run_dir / "models").iterdir())
    assert len(kept) == 2 and all(path.suffix == ".eqdd-model" for path in kept)
    for name in ("first", "second"):
        eqdd_command(
            capsys, "decompress", tmp_path / f"{name}.z", tmp_path / f"{name}.txt", "--checkpoint", run_dir
        )
        assert (tmp_path / f"{name}.txt").read_bytes() == text.read_bytes()
    # without the kept model the first file needs a model that no longer exists: a clear refusal
    with (tmp_path / "first.z").open("rb") as file:
        header = segments.read_header(file)
    codec.kept_model(run_dir, header.fingerprint).unlink()
    message = fails(
        capsys, "decompress", tmp_path / "first.z", tmp_path / "again.txt", "--checkpoint", run_dir
    )
    assert "compressed with another model" in message and not (tmp_path / "again.txt").exists()
