"""Lifetimes kept by the server, on MemoryStore (see tests/lifetime.py)."""

from tests.lifetime import (  # noqa: F401 - collected by pytest
    test_a_cookie_that_says_another_expiry_than_its_record_is_reissued,
    test_a_replayed_longer_lived_cookie_cannot_lengthen_the_session,
    test_a_touch_that_lost_to_remember_me_sends_the_stored_expiry,
    test_the_stored_lifetime_slides_the_expiry,
)
