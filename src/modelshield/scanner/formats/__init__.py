"""Format handlers, one module per format or family; the table that routes to them is
:data:`modelshield.scanner.registry.FORMATS`. Importing this package imports no handler."""
