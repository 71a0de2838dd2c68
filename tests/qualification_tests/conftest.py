from __future__ import annotations

import pytest

from tests.qualification_tests.factories import Clock, install_clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)
