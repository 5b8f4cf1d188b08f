"""Digits and worlds: the synthetic Moving MNIST base and shift worlds (paper §4.1)."""
