"""Data: corpora, their checks and splits, and the training/evaluation pipelines."""
