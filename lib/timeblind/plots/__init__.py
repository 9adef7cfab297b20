"""Figures from tidy tables; never from models."""
