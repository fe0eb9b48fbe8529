"""Data dictionaries (YAML), one per protocol plus the prediction-table contract; see README.md."""
