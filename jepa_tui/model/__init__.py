"""Encoder, target encoder, predictor and its modulators (one module per kind, :mod:`~jepa_tui.model.modulators`),
and the experience memory (paper §3)."""
