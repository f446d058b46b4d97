"""One migration script per schema version (Alembic skips this file)."""
