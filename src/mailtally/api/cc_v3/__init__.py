"""Constant Contact v3 email and contact reporting under ``/v3``: the 15 operations of
``constant-contact-v3-reporting.openapi.yaml``, same paths, parameters and bodies, so a CC
client works against mailtally by changing its base URL. Errors are CC's JSON array of
``{"error_key", "error_message"}``.
"""

from __future__ import annotations

from . import contact_reports, email_reports, stats

# Routes are matched in order, one by one: the statistics, called most, first. Included by the
# app one by one, not through a router of routers: FastAPI matches each level of nesting on
# every request, twice (to choose, then to handle).
routers = [stats.router, email_reports.router, contact_reports.router]

__all__ = ["routers"]
