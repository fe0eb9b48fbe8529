"""Quarto reports and analysis plans, one folder per registered protocol."""
