"""Training: the recipes (config.py, torch-free), the losses, the thin LightningModules and fit(),
the entry point. Receives its data, models and MLflow run from the caller; knows nothing of
notebooks, Snakemake or the plan."""
