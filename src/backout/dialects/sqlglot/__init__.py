"""What SQLite and MySQL/MariaDB share: sqlglot's parse tree, read for effects and check guards."""
