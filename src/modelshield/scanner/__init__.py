"""Pillar 1: static scanning of model files. Nothing scanned is ever loaded or executed."""
