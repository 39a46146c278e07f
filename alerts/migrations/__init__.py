"""Alembic migration scripts of the case-system store; run programmatically by ``alerts.store.open_store``."""
