"""Encoder, target encoder, predictor (three tracks) and the experience memory (paper §3)."""
