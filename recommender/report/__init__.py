"""Renderers: each returns text; only the CLI (the edge) prints or writes it."""
