"""The single source of modelshield's version."""

__version__ = "0.1.0"
