from __future__ import annotations

import pytest

from assist.settings import Settings
from tests.service import RunningService


@pytest.fixture(scope="session")
def english_service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("service")
    settings = Settings(asr_model="tiny.en", language="en", cache_dir=tmp / "cache",
                        database_url=f"sqlite:///{tmp / 'recobra.db'}")
    with RunningService(settings) as service:
        yield service
