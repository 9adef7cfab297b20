"""Data sets: generation into packed shards, manifests, torch datasets. Knows nothing of models."""
