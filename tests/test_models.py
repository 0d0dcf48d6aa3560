"""The model shipped in the package: it loads, it is the recorded one, and the commands use it."""

import jax.numpy as jnp
import numpy as np

import eqdd
from eqdd import cli, models
from eqdd.data import text8
from eqdd.runs.codec import codec_model


def test_the_shipped_model_is_the_recorded_one_and_runs():
    run = eqdd.load_run(models.shipped())
    assert (run.experiment, run.data_shape) == ("text8_oaardm", (250,))
    assert codec_model(run).fingerprint.hex() == models.TEXT8_FINGERPRINT
    logits = run.model(jnp.full(250, text8.ABSORBING, jnp.int32), 0)  # nothing revealed yet
    probs = np.exp(np.asarray(logits) - np.asarray(logits).max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    assert logits.shape == (250, text8.NUM_CLASSES) and np.isfinite(probs).all()
    space, e, q = (text8.encode(c)[0] for c in " eq")
    assert (probs[:, space] > probs[:, q]).all() and (probs[:, e] > probs[:, q]).all()  # it learned text


def test_the_commands_use_it_when_no_checkpoint_is_given(tmp_path, capsys):
    text = b"The shipped model: no training first.\nIt codes ANY text, 100%.\n"
    (tmp_path / "in.txt").write_bytes(text)
    cli.main(["compress", str(tmp_path / "in.txt"), str(tmp_path / "in.eqdd"), "--no-progress"])
    assert "order" in capsys.readouterr().err
    cli.main(["decompress", str(tmp_path / "in.eqdd"), str(tmp_path / "out.txt"), "--no-progress"])
    assert (tmp_path / "out.txt").read_bytes() == text
    assert not list(tmp_path.glob("models")) and not list(tmp_path.glob(".*.tmp"))
