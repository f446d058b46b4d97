"""Tenants: the controller API, the SQL store with its outbox, the publisher and the reader."""
