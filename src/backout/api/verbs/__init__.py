"""The public verbs, grouped by capability: each module imports only the capability it serves,
so a command pays for its own verbs only. :mod:`backout.api` is the facade over them."""
