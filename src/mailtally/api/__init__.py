"""HTTP surfaces: one module per dialect, thin over the store's queries."""
