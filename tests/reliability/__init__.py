"""Reliability suite: fault injection, concurrency, bad input, fuzzing and security (issue 8).

See docs/reliability.md for what it shows, how to run bigger trials, and the latest figures.
"""
