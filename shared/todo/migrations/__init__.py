"""Alembic migrations; ``todo migrate`` (or :func:`todo.adapters.migrate.upgrade`) runs them."""
