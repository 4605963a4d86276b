"""Readers of the audit's inputs, one module per kind: requirements files, ``pyproject.toml``,
lock files, conda environments, MLflow model files and the running environment. Each returns a
:class:`~modelshield.audit.interface.ParsedInput`; a malformed file gives error records naming it,
never an exception."""
