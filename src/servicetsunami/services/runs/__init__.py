"""Runs: one model for everything that takes time (DESIGN.md section 9).

:mod:`.service` is what the doors call (submit, get, list, cancel, wait); :mod:`.kinds` is the
registry of run kinds (each area registers its own: ``sync``, ``mirror_replay``, ...);
:mod:`.execute` turns a claimed run into a call of its kind's handler with a :class:`.context.RunContext`
and records how it ended; :mod:`.model` holds the public shapes.
"""
