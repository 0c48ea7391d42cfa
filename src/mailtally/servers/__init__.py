"""Protocol servers and pollers for bounce sources: thin adapters around `mailtally.ingest`."""
