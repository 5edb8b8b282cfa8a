"""Perpetuo's benchmark: the gateway against calling its upstream directly, in one run."""
