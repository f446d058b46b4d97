"""``sixpod addr``: normalize and format address text (placeholder, being written)."""

from __future__ import annotations

import click


@click.group()
def addr() -> None:
    """Normalize and format IPv6/IPv4 addresses, prefixes and endpoints."""
