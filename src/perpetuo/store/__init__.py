"""Persistent state: table definitions (SQLAlchemy Core), the database handle, migrations.

SQLite (WAL) is the embedded default; PostgreSQL (asyncpg) is the production store. Nothing
here knows about HTTP, and the request hot path never waits on it.
"""
