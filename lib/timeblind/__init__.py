"""timeblind: diagnose and repair time blindness in video encoders."""

__version__ = "0.1.0"
