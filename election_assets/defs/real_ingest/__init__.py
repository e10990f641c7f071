"""Real-mode ingest: raw source files and the tidy tables real mode joins on."""
