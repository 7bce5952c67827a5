"""Recall: semantic and hybrid search over a user's memory (embeddings, index, search)."""
