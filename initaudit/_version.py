"""The package version, in a leaf module: the pipeline and the package root both read it, and
nothing here imports either back (hatch reads it too, see pyproject.toml)."""

__version__ = "0.1.0"
