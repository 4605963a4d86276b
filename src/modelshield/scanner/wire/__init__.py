"""Bounded readers of binary data formats (structure only, nothing executed), shared by
detection and the format handlers; they import nothing from the rest of the scanner."""
