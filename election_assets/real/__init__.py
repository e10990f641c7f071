"""Real mode: US presidential elections by county, from the public files shipped in ``real/sources/``."""
