"""Training: the thin LightningModule and the fit entry point."""
