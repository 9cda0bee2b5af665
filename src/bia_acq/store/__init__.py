"""SQLite storage: schema and migrations, the single writer, read-only access."""
