"""Token counting, usage normalization and (later) pricing and usage events."""
