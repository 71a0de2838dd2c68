"""Alembic migrations (shipped as a package so an installed Tessera can migrate itself)."""
