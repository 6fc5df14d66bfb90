"""Backups: taking, verifying, cataloguing and restoring them."""
