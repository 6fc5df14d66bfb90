"""Going forward: ``up``, ``resolve``, and what a failed migration left behind."""
