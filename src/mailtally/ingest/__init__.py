"""Sources: each turns its own input into normalised Events."""
