"""The model shipped in the package: it loads, it is the recorded one, and the commands use it."""

import jax.numpy as jnp
import numpy as np

import eqdd
from eqdd import cli, models
from eqdd.data import text8
from eqdd.runs.codec import codec_model


def test_the_shipped_model_is_the_recorded_one_and_runs():
    run = eqdd.load_run(models.shipped())
    assert (run.experiment, run.data_shape) == ("text8_oaardm", (125,))  # 250 characters as pairs
    assert codec_model(run).fingerprint.hex() == models.TEXT8_FINGERPRINT
    pairs = text8.num_classes(2)
    logits = run.model(jnp.full(125, pairs, jnp.int32), 0)  # nothing revealed yet (the absorbing token)
    probs = np.exp(np.asarray(logits) - np.asarray(logits).max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    assert logits.shape == (125, pairs) and np.isfinite(probs).all()
    e_space, th, qx = (text8.group(text8.encode(p), 2)[0] for p in ("e ", "th", "qx"))
    assert (probs[:, e_space] > probs[:, qx]).all() and (probs[:, th] > probs[:, qx]).all()  # it learned text


def test_the_commands_use_it_when_no_checkpoint_is_given(tmp_path, capsys):
    text = b"The shipped model: no training first.\nIt codes ANY text, 100%.\n"
    (tmp_path / "in.txt").write_bytes(text)
    cli.main(["compress", str(tmp_path / "in.txt"), str(tmp_path / "in.eqdd"), "--no-progress"])
    assert "order" in capsys.readouterr().err
    cli.main(["decompress", str(tmp_path / "in.eqdd"), str(tmp_path / "out.txt"), "--no-progress"])
    assert (tmp_path / "out.txt").read_bytes() == text
    assert not list(tmp_path.glob("models")) and not list(tmp_path.glob(".*.tmp"))


def test_files_of_earlier_shipped_models_still_decompress_with_no_checkpoint(tmp_path):
    for fingerprint, name in models.EARLIER.items():
        assert codec_model(eqdd.load_run(models.shipped(name))).fingerprint.hex() == fingerprint
        assert models.shipped_for(bytes.fromhex(fingerprint)) == models.shipped(name)
    assert models.shipped_for(bytes.fromhex(models.TEXT8_FINGERPRINT)) is None  # the current one is TEXT8
    assert models.is_shipped(models.shipped()) and not models.is_shipped(tmp_path / models.TEXT8)
    # a file written by each earlier release's model (given here as its file) decodes with the default
    text = b"written before an upgrade\n"
    (tmp_path / "in.txt").write_bytes(text)
    for name in models.EARLIER.values():
        flags = ["--no-progress", "--budget", "5", "--checkpoint", str(models.shipped(name)), "--force"]
        cli.main(["compress", str(tmp_path / "in.txt"), str(tmp_path / "in.eqdd"), *flags])
        cli.main(["decompress", str(tmp_path / "in.eqdd"), str(tmp_path / "out.txt"), *flags[:1], "--force"])
        assert (tmp_path / "out.txt").read_bytes() == text
