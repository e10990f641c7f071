"""Synthetic mode's pure data code: cleaning rules, the train/test split, and the Pandera schemas of its tables."""
