"""Sequences: steps, templates (render, lint, spintax), preview and the missing-variable check."""
