"""Data-quality checks and the run manifest."""
