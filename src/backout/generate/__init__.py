"""``generate``: drafting a migration's rollback from the schema diff, with saved replays."""
