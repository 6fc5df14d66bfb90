"""``lint``: static checks over the migration folder."""
