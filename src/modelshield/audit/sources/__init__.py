"""Vulnerability sources: where advisories come from.

:mod:`~modelshield.audit.sources.osv_db` reads an offline OSV database (a directory of records
or an OSV export ZIP) through a compiled index, :mod:`~modelshield.audit.sources.osv_api`
asks the OSV API, and :mod:`~modelshield.audit.sources.osv_update` downloads the export that
``modelshield db update`` stores. Each implements
:class:`~modelshield.audit.interface.VulnerabilitySource`; what a project *declares* is read by
:mod:`modelshield.audit.inputs` instead.
"""
