"""The seams of 0.2's guarantees, closed, on MemoryStore (see tests/seams.py)."""

from tests.seams import (  # noqa: F401 - collected by pytest
    test_a_regenerate_after_log_out_everywhere_starts_a_fresh_empty_session,
    test_a_regenerate_of_an_ended_session_clears_the_cookie,
    test_a_request_outside_the_cookie_path_neither_loads_nor_sets_a_session,
    test_a_response_built_from_the_session_identity_is_private,
    test_a_stale_rolling_touch_does_not_lengthen_a_shortened_session,
    test_a_stale_touch_does_not_lengthen_a_shortened_session,
    test_a_streamed_response_that_reads_the_session_after_its_first_flush_is_private,
    test_destroy_clears_a_cookie_only_if_the_client_holds_one,
    test_save_then_the_end_of_the_request_writes_once_under_resave,
)
from tests.test_peers import count  # noqa: F401 - the store calls, counted
