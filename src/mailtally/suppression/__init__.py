"""What the product decides about addresses that bounced: pure code, no I/O."""
