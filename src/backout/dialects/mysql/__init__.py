"""MySQL and MariaDB: PyMySQL sessions, the client's splitting, mariadb-dump."""
