"""Readers of the audit's inputs, one module per kind: requirements files, ``pyproject.toml``,
lock files, conda environments, MLflow model files, model files (:mod:`.implied`) and the
running environment. Each returns a :class:`~modelshield.audit.inputs.dependency.ParsedInput`;
a malformed file gives error records naming it, never an exception. Advisory databases are
*sources* (:mod:`modelshield.audit.sources`), never inputs."""
