"""Response caching: exact matches (in-process LRU or Redis) and semantic matches (an
in-process vector index over embeddings persisted in the database). See docs/caching.md.

Caching is off unless a workspace, key or alias enables it; numpy and redis-py are imported
only when the feature that needs them is used.
"""
