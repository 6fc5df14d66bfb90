"""``emergency``: the seeds' Emergency Rollback Procedure as one command, and its incident
report."""
