"""Stubs generated from the service's proto by generate.py; not edited by hand."""
