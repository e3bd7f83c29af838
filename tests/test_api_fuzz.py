"""Property-based fuzz of the QA API from its own OpenAPI schema (schemathesis): no 5xx, responses
match the schema, on a SQLite database holding scripted calls."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from assist.api_qa import router
from assist.qa.script import Script
from assist.storage.recorder import Recorder

CALLS = Path(__file__).parent / "data" / "qa_calls"


def _app(tmp: Path) -> FastAPI:
    async def load() -> Recorder:
        recorder = Recorder(f"sqlite:///{tmp / 'fuzz.db'}")
        await recorder.start()
        for path in sorted(CALLS.glob("*.yaml")):
            await Script.load(path).store(recorder, path.stem)
        return recorder

    app = FastAPI()
    app.state.db = asyncio.run(load()).db
    app.include_router(router)
    return app


_TMP = tempfile.TemporaryDirectory(prefix="recobra-fuzz-")  # removed when the test process exits
schema = schemathesis.openapi.from_asgi("/openapi.json", _app(Path(_TMP.name)))


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate()
