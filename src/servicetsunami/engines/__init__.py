"""Lakehouse engines: the contract in ``base``, engines by name in ``registry``."""
