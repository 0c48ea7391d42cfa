"""Generated requests against every operation of our own OpenAPI: never a 500.

Schemathesis derives requests (valid and invalid) from /openapi.json and sends them to the
live server with a token of an account that has data; the only check is that the server
never answers with a server error. Derandomized, so a failure reproduces.
"""

from __future__ import annotations

import base64

import schemathesis
from hypothesis import HealthCheck, given, settings

from .conftest import Account, LiveServer
from .support.scenario import campaign_with_activity, post_events, seed_004


@schemathesis.serializer("message/rfc822", "application/x-ndjson")
def _raw_body(ctx: object, value: object) -> bytes:
    """Bodies of these types are sent as generated: bytes, or text encoded as UTF-8."""
    return value if isinstance(value, bytes) else str(value).encode()


def headers_for(path: str, account: Account) -> dict[str, str]:
    """Each dialect's own way of presenting the same token, so requests get past auth."""
    if path.startswith("/emailapi"):
        return {"Authorization": f"Zoho-oauthtoken {account.token}"}
    if path.startswith("/rest"):
        basic = base64.b64encode(f"{account.name}:{account.token}".encode()).decode()
        return {"Authorization": f"Basic {basic}", "Accept": "application/vnd.whatcounts-v1+json"}
    return account.headers


def test_no_server_errors(server: LiveServer, account: Account) -> None:
    import httpx

    with httpx.Client(base_url=server.url) as http:
        _, activity = campaign_with_activity(http, account.headers)
        post_events(http, account.headers, seed_004(activity))
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=server.url, headers=headers_for(case.path, account))
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}")

        run()
    assert not failures, "\n".join(failures[:20])
