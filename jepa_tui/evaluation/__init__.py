"""Shift-world evaluation: D_shift at n accumulated experiences, sigma_z, d_base (paper §4.1; spec §5)."""
