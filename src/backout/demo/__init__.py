"""The example projects' sample data, for ``backout demo``."""
