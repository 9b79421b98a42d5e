"""Launchers: where runs execute (the port in :mod:`.base`; threads and subprocesses in :mod:`.local`)."""
