"""Encoder, target encoder, predictor (Tracks A-E) and the experience memory (paper §3)."""
