"""Backbones, the paper's classifier head, and the embedding cache."""
