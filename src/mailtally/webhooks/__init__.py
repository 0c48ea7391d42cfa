"""Outgoing webhooks: signing (Standard Webhooks), target checks, and the delivery worker."""
