"""Database access: engines, table definitions and migrations."""
