"""The library version, in one place (read by the package and written into model files)."""

__version__ = "0.2.0.dev0"
