"""Constant Contact v3 email and contact reporting under ``/v3``: the 15 operations of
``constant-contact-v3-reporting.openapi.yaml``, same paths, parameters and bodies, so a CC
client works against mailtally by changing its base URL. Errors are CC's JSON array of
``{"error_key", "error_message"}``.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import contact_reports, email_reports, stats
from .common import PREFIX

router = APIRouter(prefix=PREFIX)
# Routes are matched in order, one by one: the statistics, called most, first.
router.include_router(stats.router)
router.include_router(email_reports.router)
router.include_router(contact_reports.router)

__all__ = ["router"]
