"""Schema, migrations, the event writer and the report queries."""
