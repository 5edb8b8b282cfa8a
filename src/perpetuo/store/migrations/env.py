"""Alembic environment: migrations run on a connection handed over by perpetuo.store.migrate."""

from alembic import context

from perpetuo.store.bulk.partitions import day_of
from perpetuo.store.schema import metadata


def _ours(name: str | None, kind: str, _: object) -> bool:
    """Daily request-log partitions are made at run time, not declared: not schema drift."""
    return not (kind == "table" and name is not None and day_of(name) is not None)


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
    include_name=_ours,
)
with context.begin_transaction():
    context.run_migrations()
