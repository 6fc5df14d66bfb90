"""Running scripts against a database: workspace, runner, transactions, locks, history, journal,
hooks, replays, status."""
