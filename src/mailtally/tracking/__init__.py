"""Tracking that recipients' own hits feed: signed tokens, device and machine verdicts, and the
sender's toolkit that puts the links, the pixel and the headers into every message."""
