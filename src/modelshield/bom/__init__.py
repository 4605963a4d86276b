"""ML bill of materials: a model, its files, its dependencies and its findings, as CycloneDX.

See :mod:`modelshield.bom.cyclonedx`; ``modelshield bom PATH`` writes one.
"""
