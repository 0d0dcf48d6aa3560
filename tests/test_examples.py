"""The runnable examples under `examples/` (the README points to them), run in-process on tiny sizes.
`examples/compress.py` needs a trained run; `tests/test_cli.py` runs it on its tiny runs."""

import numpy as np

from eqdd.data import text8
from tests.scripts import load_script

ALPHABET = set(text8.decode(np.arange(text8.NUM_CLASSES)))


def test_the_oa_ardm_example_trains_plans_and_samples(capsys):
    result = load_script("examples/oa_ardm.py").main(num_steps=10, length=32, budget=8)
    boundaries = result["policy"]
    assert boundaries[0] == 0 and len(boundaries) == 8 and (np.diff(boundaries) > 0).all()
    assert boundaries[-1] < 32
    assert np.isfinite(result["bound"]) and result["bound"] > 0
    assert all(len(text) == 32 and set(text) <= ALPHABET for text in result["samples"])
    assert "8 calls at steps" in capsys.readouterr().out


def test_the_ggm_example_samples_and_infills_around_what_it_keeps():
    result = load_script("examples/ggm.py").main(num_steps=5, length=32)
    kept = text8.decode(text8.encode(load_script("examples/ggm.py").TEXT)[:32])
    infilled, known = result["infilled"], np.asarray(result["known"])
    assert len(infilled) == 32 and known.sum() == 16
    assert all(infilled[i] == kept[i] for i in np.flatnonzero(known))  # the kept quarters are untouched
    assert all(len(text) == 32 and set(text) <= ALPHABET for text in result["samples"])
    assert np.isfinite(result["bound"]) and result["bound"] > 0
