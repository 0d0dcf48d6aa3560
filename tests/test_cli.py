"""The `eqdd` command and benchmarks/compression_rates.py end to end on tiny runs."""

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import numpy as np
import pytest
from PIL import Image

from eqdd import cli, compression
from eqdd.runs import load_run
from eqdd.runs.codec import codec_model, saved_order
from eqdd.train import Checkpointer
from tests.scripts import TINY_RUN, load_script, saved_state, write_text8

experiment = load_script("experiments/text8_oaardm.py")
benchmark = load_script("benchmarks/compression_rates.py")
TINY = [*TINY_RUN, *"--seq-len 16 --batch-size 4 --num-steps 3 --eval-max-chunks 2 --num-samples 0".split()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, text8_dir) -> tuple[Path, Path]:
    """A tiny trained run of the text8 experiment, a copy whose EMA head bias is shifted, and a copy whose
    config has a setting this version does not know (as a newer eqdd would write)."""
    root = tmp_path_factory.mktemp("runs")
    experiment.main(["--data-dir", str(text8_dir), "--run-dir", str(root / "run"), *TINY])
    state, metadata = saved_state(root / "run")
    other = eqx.tree_at(lambda s: s.ema_model.head.bias, state, state.ema_model.head.bias + 0.5)
    newer = {**metadata, "config": {**metadata["config"], "future_option": 1}}
    for name, written_state, written_metadata in (("other", other, metadata), ("newer", state, newer)):
        target = Checkpointer(root / name / "checkpoints")
        target.save(int(state.step), written_state, written_metadata)
        target.close()
    return root / "run", root / "other", root / "newer"


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def eqdd(command: str, source: Path, target: Path, run: Path, *options) -> None:
    cli.main(
        [command, str(source), str(target), "--checkpoint", str(run), "--no-progress", *map(str, options)]
    )


def fails(capsys, *args) -> str:
    """Run the command, expect it to exit with a message (status 1), and return the message."""
    with pytest.raises(SystemExit) as exit:
        eqdd(*args)
    assert isinstance(exit.value.code, str)  # sys.exit(message): status 1
    return exit.value.code + capsys.readouterr().err


def test_compress_then_decompress_restores_the_file(runs, tmp_path, capsys):
    inputs = {
        "text": (b"the cat sat on a mat and the dog ran " * 7)[:250],
        "empty": b"",
        "one": b"q",
        "ordinary": "The Cat sat on 3 mats.\nThe dog ran -- fast!\r\n\tCaf\u00e9 \u2603\n".encode(),
    }
    for name, text in inputs.items():
        (tmp_path / name).write_bytes(text)
        options = ("--budget", 4, "--verify") if name == "text" else ()  # else the default 50, cut to D = 16
        eqdd("compress", tmp_path / name, tmp_path / f"{name}.z", runs[0], *options)
        eqdd("decompress", tmp_path / f"{name}.z", tmp_path / f"{name}.out", runs[0])
        assert (tmp_path / f"{name}.out").read_bytes() == text
    assert "text: 250 characters ->" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.tmp"))


def test_text_is_written_in_segments_and_single_files_of_an_earlier_eqdd_still_decode(runs, tmp_path):
    model = codec_model(load_run(runs[0]))
    text, ordinary = b"the cat sat on a mat " * 5, b"A Cat, 2 mats.\n" * 5
    (tmp_path / "in.txt").write_bytes(text)
    eqdd("compress", tmp_path / "in.txt", tmp_path / "in.z", runs[0])
    assert (tmp_path / "in.z").read_bytes().startswith(compression.segments.MAGIC)
    single = {
        "text.z": compression.compress(text, model, 4),
        "plain.z": compression.plain.compress(ordinary, model, 4),
    }
    for name, blob in single.items():  # the formats `eqdd compress` wrote before segments
        (tmp_path / name).write_bytes(blob)
        eqdd("decompress", tmp_path / name, tmp_path / f"{name}.out", runs[0])
    assert (tmp_path / "text.z.out").read_bytes() == text and (
        tmp_path / "plain.z.out"
    ).read_bytes() == ordinary


def test_the_order_the_run_chose_on_training_data_is_used_unless_orders_are_asked(runs, tmp_path, capsys):
    chosen = json.loads((runs[0] / "results.json").read_text())["codec_order"]
    bits, order = chosen["candidate_bits"], compression.Order(chosen["order"], chosen["seed"])
    assert chosen["num_chunks"] == 16 and list(bits) == ["striped", *(f"seed {s}" for s in range(5))]
    assert bits[order.describe()] == min(bits.values())
    assert chosen["fingerprint"] == codec_model(load_run(runs[0])).fingerprint.hex()
    (tmp_path / "in.txt").write_bytes(b"the dog ran on the mat " * 4)
    eqdd("compress", tmp_path / "in.txt", tmp_path / "a.z", runs[0])
    assert f"order {order.describe()} (chosen by the run on training data)" in capsys.readouterr().err
    eqdd("compress", tmp_path / "in.txt", tmp_path / "b.z", runs[0], "--orders", 3)
    assert "(the best of striped and 3 seeded on the input)" in capsys.readouterr().err
    # a choice made for other parameters (a run trained further since) is not used, nor, for text, one
    # made before striped orders were candidates: text takes the striped order
    other = tmp_path / "other"
    shutil.copytree(runs[1], other)
    shutil.copy(runs[0] / "results.json", other / "results.json")
    eqdd("compress", tmp_path / "in.txt", tmp_path / "c.z", other)
    assert "order striped (the default for text)" in capsys.readouterr().err
    old = tmp_path / "old"
    shutil.copytree(runs[0], old)
    results = json.loads((old / "results.json").read_text())
    del results["codec_order"]["order"]  # as runs wrote it before striped orders
    (old / "results.json").write_text(json.dumps(results))
    assert saved_order(runs[0], codec_model(load_run(runs[0]))) == order
    assert saved_order(old, codec_model(load_run(old))) is None
    for name, run in (("a.z", runs[0]), ("b.z", runs[0]), ("c.z", other)):
        eqdd("decompress", tmp_path / name, tmp_path / f"{name}.txt", run)
        assert (tmp_path / f"{name}.txt").read_bytes() == (tmp_path / "in.txt").read_bytes()


def test_errors_exit_with_a_message_and_write_nothing(runs, tmp_path, capsys):
    (tmp_path / "in.txt").write_bytes(b"a cat sat on the mat " * 3)
    eqdd("compress", tmp_path / "in.txt", tmp_path / "z", runs[0], "--budget", 3)
    blob = (tmp_path / "z").read_bytes()
    (tmp_path / "bad.txt").write_bytes(b"a cat\0sat")
    (tmp_path / "truncated.z").write_bytes(blob[:-3])
    (tmp_path / "damaged.z").write_bytes(blob[:-3] + bytes([blob[-3] ^ 1]) + blob[-2:])
    out = tmp_path / "out"
    cases = [
        (("compress", "bad.txt", runs[0]), r"binary input \(a NUL byte at offset 5\)"),
        (("decompress", "z", runs[1]), "compressed with another model"),
        (("decompress", "truncated.z", runs[0]), "truncated"),
        (("decompress", "damaged.z", runs[0]), "damaged"),
        (("decompress", "in.txt", runs[0]), "not an eqdd compressed file"),
        (("decompress", "z", tmp_path / "nowhere"), "holds no checkpoint"),
        (("decompress", "z", runs[2]), r"settings this version of eqdd does not know \(future_option\)"),
        (("compress", "in.txt", runs[2]), r"settings this version of eqdd does not know \(future_option\)"),
        (("compress", "in.txt", runs[0], "--budget", 17), r"--budget must be in 1\.\.16"),
        (("decompress", "missing.z", runs[0]), "No such file"),
    ]
    for (command, name, run, *options), message in cases:
        text = fails(capsys, command, tmp_path / name, out, run, *options)
        assert re.search(message, text), (message, text)
        assert not out.exists(), name
    assert not (tmp_path / "nowhere").exists()
    out.write_bytes(b"kept")  # a failed run leaves an existing OUT as it was, even with --force
    fails(capsys, "decompress", tmp_path / "z", out, runs[1], "--force")
    assert out.read_bytes() == b"kept" and not list(tmp_path.glob(".*.tmp"))


def test_the_input_and_an_existing_output_are_never_overwritten_unasked(runs, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_bytes(b"a cat sat on the mat")
    (tmp_path / "d").mkdir()
    (tmp_path / "kept.z").write_bytes(b"kept")
    (tmp_path / "link.txt").symlink_to(source)
    cases = [
        (source, "is the input file"),
        (tmp_path / "link.txt", "is the input file"),  # the same file under another name
        (tmp_path / "kept.z", r"already exists; use --force"),
        (tmp_path / "d", "is a directory"),
        (tmp_path / "missing" / "out.z", "the directory .*missing does not exist"),
    ]
    for target, message in cases:
        for force in ((), ("--force",)) if "already exists" not in message else ((),):
            assert re.search(message, fails(capsys, "compress", source, target, runs[0], *force))
    assert source.read_bytes() == b"a cat sat on the mat" and (tmp_path / "kept.z").read_bytes() == b"kept"
    eqdd("compress", source, tmp_path / "kept.z", runs[0], "--force")  # asked: overwritten
    eqdd("decompress", tmp_path / "kept.z", tmp_path / "out.txt", runs[0])
    assert (tmp_path / "out.txt").read_bytes() == source.read_bytes()


def test_the_compression_example_round_trips_text_and_images(runs, image_runs, capsys):
    example = load_script("examples/compress.py")
    text, image = example.main(str(runs[0])), example.main(str(image_runs[0]), budget=20)
    assert text["symbols"] == 880 and image["symbols"] == 2 * 28 * 28
    assert 0 < text["bytes"] < text["symbols"]  # under 8 bits a character, headers included
    assert capsys.readouterr().out.count("decoded exactly") == 2


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "eqdd"
    result = subprocess.run([script, "compress", "--help"], capture_output=True, text=True, check=True)
    assert "--checkpoint RUN_DIR" in result.stdout and "--budget" in result.stdout


def test_benchmark_compares_with_the_exact_code_length_and_the_baselines(runs, tmp_path, capsys):
    write_text8(tmp_path, seed=2, length=30_000)
    english = tmp_path / "notes.md"
    english.write_text("# Notes\n\nThe 3 samplers share ONE signature; see `eqdd.samplers`.\n")
    options = (
        f"--num-chars 330 --budget 4 --orders 2 --order-chunks 2 --batch-size 8 --out-dir {tmp_path / 'out'}"
        " --no-match"  # the network alone, to compare with its exact code length
    )
    results = benchmark.main(
        [
            *("--checkpoint", str(runs[0]), "--data-dir", str(tmp_path), "--no-progress", *options.split()),
            *("--text-files", str(english)),
        ]
    )
    out = capsys.readouterr().out
    assert "exact code length" in out and "xz -9" in out and "overhead" in out
    assert results["num_chars"] == 320 and len(results["policy"]) == 4  # whole chunks of 16
    rows = {r["method"]: r for r in results["rows"]}
    for matmuls in ("float32", "bfloat16"):  # a codec row and its exact code length for each
        codec, exact = (
            rows[f"eqdd OA-ARDM codec, 4 calls/chunk, {matmuls}"],
            rows[f"exact code length -log2 p(x | orders, policy), {matmuls}"],
        )
        assert 0 < 8 * codec["bytes"] - exact["bpc"] * 320 < 8 * (results["header_bytes"] + 12)
        assert results["products"][matmuls]["compress_per_s"] == codec["compress_chars_per_s"]
    assert set(results["speedup"]) == {"compress", "decompress"} and min(results["speedup"].values()) > 0
    assert {r["method"] for r in results["rows"]} >= {"gzip -9", "bzip2 -9", "xz -9", "zstd -19"}
    assert json.loads((tmp_path / "out" / "results.json").read_text())["order_seed"] == results["order_seed"]
    file_rows = results["text_files"][str(english)]  # any UTF-8 file, as `eqdd compress` codes it
    assert file_rows[0]["method"] == "eqdd, 4 calls/chunk + side stream" and file_rows[0]["bytes"] > 0
    assert [r["method"] for r in file_rows[1:4]] == ["gzip -9", "bzip2 -9", "xz -9"]


@pytest.mark.parametrize("run", [0, 1], ids=["oa", "upscale"])
def test_an_image_is_compressed_and_decompressed_to_a_png_of_the_same_pixels(
    image_runs, run, tmp_path, capsys
):
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    (tmp_path / "in.png").write_bytes(png(pixels))
    eqdd(
        "compress",
        tmp_path / "in.png",
        tmp_path / "z",
        image_runs[run],
        "--budget",
        3,
        "--orders",
        2,
        "--verify",
    )
    err = capsys.readouterr().err
    assert "in.png: 28x28x1 image ->" in err and "bits per dimension" in err
    assert ("budget 3 per stage x 2 stages" in err) == (run == 1)
    eqdd("decompress", tmp_path / "z", tmp_path / "out.png", image_runs[run])
    with Image.open(tmp_path / "out.png") as restored:
        assert restored.format == "PNG" and restored.mode == "L"
        np.testing.assert_array_equal(np.asarray(restored), pixels)
    assert not list(tmp_path.glob(".*.tmp"))
    umask = os.umask(0)
    os.umask(umask)
    for written in ("z", "out.png"):  # the mode of a newly created file, not the temporary file's 0600
        assert (tmp_path / written).stat().st_mode & 0o777 == 0o666 & ~umask


def test_image_errors_exit_with_a_message_and_write_nothing(runs, image_runs, tmp_path, capsys):
    rng = np.random.default_rng(1)
    (tmp_path / "in.png").write_bytes(png(rng.integers(0, 256, (28, 28), dtype=np.uint8)))
    (tmp_path / "colour.png").write_bytes(png(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)))
    (tmp_path / "in.txt").write_bytes(b"a cat sat on the mat")
    eqdd("compress", tmp_path / "in.png", tmp_path / "image.z", image_runs[0], "--budget", 2, "--orders", 1)
    eqdd("compress", tmp_path / "in.txt", tmp_path / "text.z", runs[0], "--budget", 2, "--orders", 1)
    blob = (tmp_path / "image.z").read_bytes()
    (tmp_path / "truncated.z").write_bytes(blob[:-3])
    (tmp_path / "damaged.z").write_bytes(blob[:-3] + bytes([blob[-3] ^ 1]) + blob[-2:])
    model = codec_model(load_run(image_runs[0]))
    pair = np.zeros((2, 28, 28, 1), np.uint8)
    (tmp_path / "pair.z").write_bytes(compression.compress_images(pair, model, 2))
    out = tmp_path / "out"
    cases = [
        (("compress", "colour.png", image_runs[0]), "the image is 28x28x3, but the run codes 28x28x1 images"),
        (("compress", "in.txt", image_runs[0]), "not an image file Pillow can read"),
        (("compress", "in.png", runs[0]), r"binary input \(a NUL byte at offset 8\)"),
        (
            ("compress", "in.png", image_runs[0], "--matmuls", "bfloat16"),
            "bfloat16 matrix products are for text models \\(the transformer\\); an image model of 28x28x1 "
            "images computes in float32",
        ),
        (("compress", "in.png", image_runs[0], "--match"), "--match is for text; an image model of 28x28x1"),
        (("decompress", "image.z", image_runs[1]), "compressed with another model"),
        (
            ("decompress", "text.z", image_runs[0]),
            "holds text, but the checkpoint is an image model of 28x28x1",
        ),
        (("decompress", "image.z", runs[0]), "holds 1 image of 28x28x1, but the checkpoint is a text model"),
        (("decompress", "truncated.z", image_runs[0]), "truncated"),
        (("decompress", "damaged.z", image_runs[0]), "damaged"),
        (("decompress", "pair.z", image_runs[0]), "holds 2 images and `eqdd decompress` writes one PNG"),
    ]
    for (command, name, run, *options), message in cases:
        text = fails(capsys, command, tmp_path / name, out, run, *options)
        assert re.search(message, text), (message, text)
        assert not out.exists(), name


@pytest.mark.parametrize("run", [0, 1], ids=["oa", "upscale"])
def test_benchmark_compares_images_with_the_exact_code_length_and_png(image_runs, run, tmp_path, capsys):
    rng = np.random.default_rng(3)
    for name, count in (("train-images-idx3-ubyte.gz", 4), ("t10k-images-idx3-ubyte.gz", 3)):
        pictures = (rng.random((count, 28, 28)) < 0.3) * rng.integers(100, 256, (count, 28, 28))
        header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in pictures.shape)
        (tmp_path / name).write_bytes(gzip.compress(header + pictures.astype(np.uint8).tobytes()))
    options = (
        f"--num-images 3 --budget 2 --orders 2 --order-chunks 2 --batch-size 2 --out-dir {tmp_path / 'out'}"
    )
    results = benchmark.main(
        ["--checkpoint", str(image_runs[run]), "--data-dir", str(tmp_path), "--no-progress", *options.split()]
    )
    out = capsys.readouterr().out
    assert "bits/dim" in out and "PNG -9 optimize, one file per image" in out and "2.73" in out
    assert results["num_images"] == 3 and results["image_shape"] == [28, 28, 1]
    assert np.shape(results["policy"]) == ((2,) if run == 0 else (2, 2))  # 2 calls (per stage)
    assert ("eqdd Upscale ARDM codec, 2x2 calls/image" in out) == (run == 1)
    codec, exact = results["rows"][:2]
    assert 0 < 8 * codec["bytes"] - exact["bpd"] * 3 * 784 < 8 * (results["header_bytes"] + 12)
    assert {r["method"] for r in results["rows"]} >= {"PNG -9 optimize, images stacked in one", "xz -9"}
