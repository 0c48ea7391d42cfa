"""mailtally: the tally of every email campaign."""

__version__ = "0.1.0"
