"""Aliases and their deployments, strategies, error classification, retries and fallbacks."""
