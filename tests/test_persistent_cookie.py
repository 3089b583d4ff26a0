"""Browser-session cookies and "remember me" on MemoryStore (see tests/persistent_cookie.py)."""

from tests.persistent_cookie import (  # noqa: F401 - collected by pytest
    app,
    test_a_browser_session_cookie_has_no_max_age_and_no_expires,
    test_a_persistent_cookie_has_the_configured_max_age,
    test_remember_me_gives_a_persistent_cookie_of_exactly_its_lifetime,
    test_remember_me_is_exactly_its_lifetime_whatever_the_default,
    test_the_server_still_ends_a_browser_session_after_max_age_idle,
    test_the_server_still_ends_a_browser_session_at_the_absolute_timeout,
    test_unticking_remember_me_returns_to_a_browser_session_cookie,
)
