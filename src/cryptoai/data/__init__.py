"""Data layer: sources, the Parquet raw store, validation and preprocessing."""
