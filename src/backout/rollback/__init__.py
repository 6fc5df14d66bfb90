"""``plan`` and ``rollback``: planning, running (whole or partial), resuming and undoing
interrupted runs."""
