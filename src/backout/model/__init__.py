"""The vocabulary every layer speaks: errors, URLs, scripts and directives, schema snapshots,
effects."""
