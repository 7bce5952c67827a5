"""Recall: the embedding index of a user's memory and hybrid (vector + keyword) search."""
