"""Synthetic mode's pure model code: candidate families, their tuning, and their compilation to NumPy."""
