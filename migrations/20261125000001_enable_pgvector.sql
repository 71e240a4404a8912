-- The pgvector backend stores vectors in this database.
CREATE EXTENSION IF NOT EXISTS vector;
