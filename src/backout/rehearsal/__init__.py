"""``test``: rehearsing rollbacks on a throwaway copy, with or without data."""
