"""Evaluation of the encoders: snippet and passage retrieval, piece identification."""
