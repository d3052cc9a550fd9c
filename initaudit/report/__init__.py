"""Stage 5: report records and the renderers that turn them into text or JSON."""
