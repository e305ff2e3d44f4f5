"""Property-based requests from the OpenAPI schema (schemathesis) against the live server: never a 5xx.

Runs with a token, uploads and the quarantine on, so the auth dependency, the add-by-upload endpoint and
moving duplicates are exercised too; bounded to a few dozen examples per operation.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from lookalike.server import create_app
from tests.serving import indexed_collection, running

TOKEN = "schema-token"
EXAMPLES = 25  # per operation and mode: a minute or so in all


@pytest.fixture(scope="module")
def live_url(tmp_path_factory, tf1_module):
    root = tmp_path_factory.mktemp("schema")
    collection = indexed_collection(root, tf1_module, batching=True)
    app = create_app(collection, token=TOKEN, upload_dir=root / "uploads", max_upload_bytes=2**20,
                     quarantine=root / "quarantine")
    with running(app) as url:
        yield url
    collection.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_request_gets_a_server_error(live_url, mode):
    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
            continue  # nothing to get wrong in /health or /info

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def no_server_error(case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        no_server_error()


def _has_inputs(operation) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))
