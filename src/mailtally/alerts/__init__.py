"""Alert rules on an activity's rates: pure code, no I/O."""
