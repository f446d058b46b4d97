"""The store's Alembic migration scripts, run by the controller at start.

``env.py`` runs them on the connection :func:`sixpod.tenants.schema.upgrade` hands it, in
that caller's transaction (PostgreSQL and SQLite both change their tables transactionally,
so a migration that fails leaves the database at its old version). ``versions/`` holds one
script per schema version; the revision id is the version's number, ``0001`` onwards.

A change to the tables in :mod:`sixpod.tenants.schema` comes with the next script
(``down_revision`` the last one) and the next ``SCHEMA_VERSION``; a script that has shipped is
never edited, and it spells out its own tables rather than importing today's. Migrations only
go forward: an older sixpod refuses a newer database.
"""
