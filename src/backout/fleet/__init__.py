"""One command over many databases or schemas (``--targets FILE``): the targets file, the goal
each command reaches on a target, and the run that takes every target there in parallel.

The command itself is not here: the layer above passes in what to run on one target (the
api verb), so each target runs exactly as ``backout <command> --url TARGET`` would, with its
own connections, run lock, backup and history event (docs/fleet.md).
"""
