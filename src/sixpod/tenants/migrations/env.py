"""Alembic's environment: the scripts run on the connection the caller passed in the config's
attributes (see :func:`sixpod.tenants.schema.alembic_config`), never on a URL of their own."""

from alembic import context

from sixpod.tenants.schema import meta

context.configure(connection=context.config.attributes["connection"], target_metadata=meta)
with context.begin_transaction():
    context.run_migrations()
