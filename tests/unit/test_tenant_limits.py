"""Limits per tenant from settings: the defaults, TENANT_LIMITS overrides, and their checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from maas.app import limit_policy
from maas.settings import Settings
from services.tenant_limits import TenantLimits


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_limits_are_off_by_default():
    policy = limit_policy(settings())
    assert policy.for_tenant("anyone") == TenantLimits()
    assert not policy.limits_requests


def test_a_tenants_own_limits_replace_only_the_defaults_it_names(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("RATE_LIMIT_REQUESTS_PER_SECOND", "10")
    monkeypatch.setenv("QUOTA_MAX_MESSAGES", "1000")
    monkeypatch.setenv(
        "TENANT_LIMITS",
        '{"acme": {"quota_max_messages": 50000, "rate_limit_burst": 40},'
        ' "free": {"rate_limit_requests_per_second": 0}}',
    )
    policy = limit_policy(Settings(_env_file=None))  # type: ignore[call-arg]
    assert policy.for_tenant("acme") == TenantLimits(10.0, 40, 50000, 0)
    assert policy.for_tenant("free") == TenantLimits(0.0, 0, 1000, 0)
    assert policy.for_tenant("other") == TenantLimits(10.0, 0, 1000, 0)
    assert policy.limits_requests


def test_only_an_override_may_turn_the_rate_limit_on():
    policy = limit_policy(settings(tenant_limits={"acme": {"rate_limit_requests_per_second": 5}}))
    assert policy.limits_requests
    assert policy.for_tenant("other").requests_per_second == 0


@pytest.mark.parametrize(
    "limits",
    [
        {"acme": {"max_messages": 5}},  # not a setting's name
        {"acme": {"quota_max_messages": -1}},
        {"a:b": {"quota_max_messages": 5}},  # not a tenant id
    ],
)
def test_tenant_limits_that_cannot_be_meant_are_refused(limits: dict):
    with pytest.raises(ValidationError):
        settings(tenant_limits=limits)


@pytest.mark.parametrize(
    ("rate", "burst", "effective"), [(0.5, 0, 1), (10, 0, 10), (2.5, 0, 3), (10, 4, 4)]
)
def test_the_burst_is_one_seconds_worth_unless_set(rate: float, burst: int, effective: int):
    assert TenantLimits(requests_per_second=rate, burst=burst).effective_burst == effective
