"""rpm/tpm windows and how the router skips capped deployments."""

from __future__ import annotations

from perpetuo.routing.capacity import LocalCapacityCounter


def test_rpm_counts_the_last_minute_and_says_when_a_slot_frees():
    counter = LocalCapacityCounter()
    assert counter.admit("d", 2, None, 0, 100.2) == 0.0
    assert counter.admit("d", 2, None, 0, 130.7) == 0.0
    wait = counter.admit("d", 2, None, 0, 131.0)
    assert abs(wait - 29.0) < 1e-9  # the request made at second 100 leaves the window at 160
    assert counter.usage("d", 131.0) == (2, 0)
    assert counter.admit("d", 2, None, 0, 160.0) == 0.0
    assert counter.usage("d", 160.0) == (2, 0)
    assert counter.usage("d", 500.0) == (0, 0)


def test_tpm_uses_the_request_estimate_and_is_corrected_by_real_usage():
    counter = LocalCapacityCounter()
    assert counter.admit("d", None, 1000, 600, 0.0) == 0.0
    assert counter.wait_time("d", None, 1000, 600, 1.0) > 0
    counter.adjust("d", -450, 1.0)  # the request really used 150 tokens
    assert counter.admit("d", None, 1000, 600, 2.0) == 0.0
    assert counter.usage("d", 2.0) == (2, 750)
    assert counter.wait_time("d", None, 1000, 2000, 2.0) == 60.0  # can never fit


def test_keys_are_independent():
    counter = LocalCapacityCounter()
    assert counter.admit("a", 1, None, 0, 0.0) == 0.0
    assert counter.admit("a", 1, None, 0, 0.0) > 0
    assert counter.admit("b", 1, None, 0, 0.0) == 0.0
