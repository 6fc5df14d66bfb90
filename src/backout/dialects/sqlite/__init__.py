"""SQLite: the standard library's driver, file backups."""
