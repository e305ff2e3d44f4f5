"""A collection of indexed images: SQLite (the truth) plus a derived FAISS index, in one directory."""
