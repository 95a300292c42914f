"""The circuit-breaker probe over HTTP: credentials go as Basic auth and never into a log line."""
from __future__ import annotations

import logging

import pytest

from dynamic_dynamodb.breaker import HttpBreaker


@pytest.fixture
def warnings(caplog):
    caplog.set_level(logging.WARNING, logger="dynamic-dynamodb")
    return caplog


@pytest.mark.parametrize("status", [503, 200])
def test_a_password_with_an_at_sign_is_sent_as_basic_auth_and_never_logged(breaker, warnings, status):
    breaker.status = status
    url = f"http://ops:p@ss-Secret9@127.0.0.1:{breaker.port}/breaker"
    assert HttpBreaker().is_closed(url, 2000, {"x-table-name": "orders"}) is (status == 200)
    assert breaker.requests[0].auth == ("ops", "p@ss-Secret9")
    assert "Secret9" not in warnings.text
    if status != 200:
        assert f"http://ops:***@127.0.0.1:{breaker.port}/breaker answered 503" in warnings.text


def test_a_lone_token_in_the_url_is_not_logged_when_the_breaker_is_unreachable(warnings):
    # a user name alone is often a token: --show-config masked it, the log line did not
    assert HttpBreaker().is_closed("http://tok3nS3cret@127.0.0.1:9/cb", 2000, {}) is False
    assert "http://***@127.0.0.1:9/cb unreachable" in warnings.text and "tok3nS3cret" not in warnings.text
