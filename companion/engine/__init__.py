"""Identification and following: turns audio embeddings into pieces and positions."""
