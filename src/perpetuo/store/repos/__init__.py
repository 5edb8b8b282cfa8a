"""Queries, one module per table family. Functions take a connection; callers own transactions."""
