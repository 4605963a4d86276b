"""ML bill of materials: a model, its files, its dependencies and its findings, as CycloneDX.

:mod:`modelshield.bom.cyclonedx` builds the CycloneDX 1.6 document (``create_bom``);
:mod:`modelshield.bom.dependencies` finds the model's dependencies and their known
vulnerabilities with the dependency audit. ``modelshield bom PATH`` writes one.
"""
