"""Models: encoders (plain nn.Modules, one file each), the task heads, the grounded decoder, their
configs (config.py, torch-free), the registry that builds them by name and their files
(checkpoint.py). Knows nothing of data sets, training or files beyond its own checkpoints."""
