"""Runs: what each experiment trains (its options and presets, its model and objective), and the one way
to open a run back from its checkpoints, [`load_run`][eqdd.runs.registry.load_run] (also `eqdd.load_run`).
The scripts in `experiments/` drive them (train, evaluate, sample, write); the benchmarks, the examples and
the `eqdd` command open runs through `load_run`, so none of them needs the scripts.

- [`registry`][eqdd.runs.registry]: the experiments, [`Run`][eqdd.runs.registry.Run], `load_run` and
  `save_model` (a run's model as one immutable file, which `load_run` reads);
- [`model_file`][eqdd.runs.model_file]: that file's format, checked before anything is built;
- [`text8`][eqdd.runs.text8]: what the text8 runs share (data and transformer options, evaluation);
- [`text8_oaardm`][eqdd.runs.text8_oaardm]: the OA-ARDM on text8;
- [`text8_ggm`][eqdd.runs.text8_ggm]: the Glauber Generative Model on text8;
- [`images`][eqdd.runs.images]: an OA-ARDM or Upscale ARDM on images;
- [`codec`][eqdd.runs.codec]: a run as `eqdd compress` sees it, and the order it chose for it;
- [`inference`][eqdd.runs.inference]: what `eqdd sample` and `eqdd evaluate` do with a run.
"""

from eqdd.runs.model_file import ModelFileError
from eqdd.runs.registry import Run, load_config, load_run, save_model

__all__ = ["ModelFileError", "Run", "load_config", "load_run", "save_model"]
