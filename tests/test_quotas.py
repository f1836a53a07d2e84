"""Quotas by role: the most generous role wins, images, GPU-seconds, cooldown, the daily reset."""

import pytest

from bot.community.quotas import (
    DAY,
    Quota,
    QuotaExceeded,
    Usage,
    check,
    day_start,
    describe,
    next_reset,
    quota_for,
)

MONDAY = 1_796_083_200.0  # 00:00 UTC
NOON = MONDAY + DAY / 2
DEFAULT = Quota(images_per_day=20, gpu_seconds_per_day=600, cooldown=30)
ROLES = {
    1: Quota(images_per_day=100, gpu_seconds_per_day=300, cooldown=60),  # boosters
    2: Quota(images_per_day=None, gpu_seconds_per_day=900, cooldown=10),  # supporters
}


def test_the_day_is_a_utc_day():
    assert day_start(NOON) == MONDAY
    assert next_reset(NOON) == MONDAY + DAY
    assert day_start(MONDAY) == MONDAY


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ((), DEFAULT),
        ((99,), DEFAULT),  # a role without a quota changes nothing
        ((1,), Quota(100, 600, 30)),  # each limit: the more generous of default and role
        ((1, 2), Quota(None, 900, 10)),  # None is no limit, the most generous of all
        ((2, 1), Quota(None, 900, 10)),  # order of roles does not matter
    ],
)
def test_the_most_generous_limit_of_a_members_roles_applies(roles, expected):
    assert quota_for(roles, ROLES, DEFAULT) == expected


def test_the_refusal_says_how_much_was_used_and_when_more_comes():
    with pytest.raises(QuotaExceeded) as caught:
        check(DEFAULT, Usage(images=18, pending=2), NOON)
    reset = int(MONDAY + DAY)
    assert caught.value.user_message == f"You have used 20 of 20 images today; more <t:{reset}:R>."
    assert caught.value.retry_at == MONDAY + DAY


def test_one_image_under_the_limit_is_allowed():
    check(DEFAULT, Usage(images=19), NOON)


def test_gpu_seconds_run_out():
    with pytest.raises(QuotaExceeded, match="used 601 of 600 GPU-seconds today"):
        check(DEFAULT, Usage(images=1, gpu_seconds=601.2), NOON)


def test_the_cooldown_runs_from_the_last_job():
    with pytest.raises(QuotaExceeded, match=f"next one <t:{int(NOON + 20)}:R>") as caught:
        check(DEFAULT, Usage(last_job_at=NOON - 10), NOON)
    assert caught.value.retry_at == NOON + 20
    check(DEFAULT, Usage(last_job_at=NOON - 30), NOON)


def test_counts_start_again_at_midnight():
    """Usage is summed per day by whoever reads it; a new day starts from nothing."""
    spent = Usage(images=20, gpu_seconds=600)
    with pytest.raises(QuotaExceeded):
        check(DEFAULT, spent, MONDAY + DAY - 1)
    check(DEFAULT, Usage(), MONDAY + DAY)
    assert day_start(MONDAY + DAY - 1) != day_start(MONDAY + DAY)


def test_unlimited_allows_anything():
    check(Quota(), Usage(images=10**6, gpu_seconds=10**9, last_job_at=NOON), NOON)


def test_a_quota_round_trips_through_its_dict():
    for quota in (DEFAULT, Quota(), Quota(None, 12.5, 0)):
        assert Quota.from_dict(quota.to_dict()) == quota


@pytest.mark.parametrize(
    ("quota", "text"),
    [
        (Quota(), "No quota applies to you."),
        (
            DEFAULT,
            f"Today: 4 of 20 images, 42 of 600 GPU-seconds; counts start again"
            f" <t:{int(MONDAY + DAY)}:R>. 30 s between jobs.",
        ),
        (Quota(cooldown=5), "5 s between jobs."),
    ],
)
def test_describe(quota, text):
    assert describe(quota, Usage(images=3, pending=1, gpu_seconds=42.4), NOON) == text
