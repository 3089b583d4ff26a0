"""The store contract: one suite, run against every store.

Subclass `StoreContract` in a test module and provide a ``store`` fixture
that returns an empty store built with ``clock=clock`` (the `FakeClock`
fixture from conftest).  Writers of their own stores can run it too.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import FakeClock
from tornado_sessions.errors import SessionConflict, SessionExists, SessionGone
from tornado_sessions.manager import new_sid
from tornado_sessions.stores.base import SessionRecord, SessionStore, fingerprint, hash_sid


def record(
    clock: FakeClock, data: str = '{"a":1}', *, ttl: int = 3600, user: str | None = None
) -> SessionRecord:
    now = int(clock())
    return SessionRecord(data=data, created_at=now, expires_at=now + ttl, user_id=user)


class StoreContract:
    """Behaviour every `SessionStore` must have."""

    @pytest.mark.gen_test
    async def test_missing_session_is_none(self, store: SessionStore) -> None:
        assert await store.get(new_sid()) is None

    @pytest.mark.gen_test
    async def test_ending_a_users_session_needs_its_exact_fingerprint(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid, other = new_sid(), new_sid()
        await store.set(sid, record(clock, user="alice"), expected_version=None)
        await store.set(other, record(clock, user="alice"), expected_version=None)
        exact = fingerprint(sid)
        for wrong in (
            "",
            exact[:1],
            exact[:11],
            exact + "0",
            exact + "\n",
            " " + exact,
            exact[:11] + "%",
            exact[:11] + "_",
            hash_sid(sid).hex(),  # the whole key is not a fingerprint either
        ):
            assert await store.destroy_user_session("alice", wrong) is False, repr(wrong)
        assert await store.destroy_user_session("bob", exact) is False  # not bob's
        assert await store.get(sid) is not None and await store.get(other) is not None
        assert await store.destroy_user_session("alice", exact) is True
        assert await store.get(sid) is None
        assert await store.get(other) is not None
        # The same 12 hex digits in upper case name the same session.
        assert await store.destroy_user_session("alice", fingerprint(other).upper()) is True
        assert await store.get(other) is None

    @pytest.mark.gen_test
    async def test_create_and_get(self, store: SessionStore, clock: FakeClock) -> None:
        sid = new_sid()
        assert await store.set(sid, record(clock, user="u1"), expected_version=None) == 1
        got = await store.get(sid)
        assert got is not None
        assert got.data == '{"a":1}'
        assert got.created_at == int(clock())
        assert got.expires_at == int(clock()) + 3600
        assert got.version == 1
        (info,) = await store.sessions_for_user("u1")
        assert info.fingerprint == fingerprint(sid)
        assert (info.created_at, info.updated_at, info.expires_at) == (
            int(clock()),
            int(clock()),
            int(clock()) + 3600,
        )

    @pytest.mark.gen_test
    async def test_create_twice_is_refused(self, store: SessionStore, clock: FakeClock) -> None:
        sid = new_sid()
        await store.set(sid, record(clock), expected_version=None)
        with pytest.raises(SessionExists):
            await store.set(sid, record(clock, '{"b":2}'), expected_version=None)
        got = await store.get(sid)
        assert got is not None and got.data == '{"a":1}'

    @pytest.mark.gen_test
    async def test_versioned_update(self, store: SessionStore, clock: FakeClock) -> None:
        sid = new_sid()
        await store.set(sid, record(clock), expected_version=None)
        clock.advance(10)
        assert await store.set(sid, record(clock, '{"a":2}'), expected_version=1) == 2
        got = await store.get(sid)
        assert got is not None
        assert (got.data, got.version) == ('{"a":2}', 2)
        assert got.created_at == int(clock()) - 10  # creation time is kept
        (info,) = await store.all()
        assert (info.created_at, info.updated_at) == (int(clock()) - 10, int(clock()))
        with pytest.raises(SessionConflict):
            await store.set(sid, record(clock, '{"a":3}'), expected_version=1)
        got = await store.get(sid)
        assert got is not None and got.data == '{"a":2}'

    @pytest.mark.gen_test
    async def test_update_of_a_destroyed_session_does_not_resurrect_it(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid = new_sid()
        await store.set(sid, record(clock), expected_version=None)
        assert await store.destroy(sid) is True
        with pytest.raises(SessionGone):
            await store.set(sid, record(clock, '{"a":2}'), expected_version=1)
        assert await store.get(sid) is None
        assert await store.destroy(sid) is False

    @pytest.mark.gen_test
    async def test_a_versioned_destroy_deletes_only_that_version(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid = new_sid()
        await store.set(sid, record(clock), expected_version=None)
        assert await store.set(sid, record(clock, '{"a":2}'), expected_version=1) == 2
        # An older version (what a regenerating request loaded) deletes nothing.
        assert await store.destroy(sid, expected_version=1) is False
        got = await store.get(sid)
        assert got is not None and (got.data, got.version) == ('{"a":2}', 2)
        assert await store.destroy(sid, expected_version=2) is True
        assert await store.get(sid) is None
        assert await store.destroy(sid, expected_version=2) is False

    @pytest.mark.gen_test
    async def test_expired_session_is_invisible_and_not_updated(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid = new_sid()
        await store.set(sid, record(clock, ttl=60), expected_version=None)
        clock.advance(59)
        assert await store.get(sid) is not None
        clock.advance(1)
        assert await store.get(sid) is None
        with pytest.raises(SessionGone):
            await store.set(sid, record(clock), expected_version=1)
        assert await store.touch(sid, int(clock()) + 3600, ttl=None) is False
        assert await store.get(sid) is None

    @pytest.mark.gen_test
    async def test_touch_extends_expiry_only(self, store: SessionStore, clock: FakeClock) -> None:
        sid = new_sid()
        await store.set(sid, record(clock, ttl=60), expected_version=None)
        clock.advance(30)
        assert await store.touch(sid, int(clock()) + 60, ttl=None) is True
        clock.advance(45)  # past the original expiry
        got = await store.get(sid)
        assert got is not None
        assert (got.data, got.version) == ('{"a":1}', 1)
        assert got.expires_at == int(clock()) + 15

    @pytest.mark.gen_test
    async def test_counting_listing_clearing(self, store: SessionStore, clock: FakeClock) -> None:
        sids = [new_sid() for _ in range(3)]
        for i, sid in enumerate(sids):
            await store.set(sid, record(clock, ttl=100 * (i + 1)), expected_version=None)
        assert await store.length() == 3
        infos = await store.all()
        assert {i.fingerprint for i in infos} == {fingerprint(s) for s in sids}
        clock.advance(150)
        assert await store.length() == 2
        assert await store.clear_expired() == 1
        assert await store.get(sids[1]) is not None
        assert await store.get(sids[2]) is not None
        assert await store.clear() == 2
        assert await store.length() == 0

    @pytest.mark.gen_test
    async def test_clear_expired_deletes_only_expired(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        live = [new_sid() for _ in range(5)]
        dead = [new_sid() for _ in range(7)]
        for sid in dead:
            await store.set(sid, record(clock, ttl=10), expected_version=None)
        for sid in live:
            await store.set(sid, record(clock, ttl=1000), expected_version=None)
        clock.advance(11)
        assert await store.clear_expired() == 7
        assert await store.clear_expired() == 0
        for sid in live:
            assert await store.get(sid) is not None
        clock.advance(-11)  # even with the clock back, the expired rows are gone
        for sid in dead:
            assert await store.get(sid) is None

    @pytest.mark.gen_test
    async def test_sessions_of_a_user(self, store: SessionStore, clock: FakeClock) -> None:
        alice = [new_sid() for _ in range(3)]
        bob = new_sid()
        for sid in alice:
            await store.set(sid, record(clock, user="alice"), expected_version=None)
            clock.advance(1)
        await store.set(bob, record(clock, user="bob"), expected_version=None)
        listed = await store.sessions_for_user("alice")
        assert [i.fingerprint for i in listed] == [fingerprint(s) for s in reversed(alice)]
        assert all(i.user_id == "alice" for i in listed)
        assert await store.destroy_user_session("alice", fingerprint(alice[0])) is True
        assert await store.destroy_user_session("bob", fingerprint(alice[1])) is False
        assert await store.destroy_user_sessions("alice", except_sid=alice[2]) == 1
        assert await store.get(alice[1]) is None
        assert await store.get(alice[2]) is not None
        assert await store.get(bob) is not None
        assert await store.destroy_user_sessions("alice") == 1
        assert await store.sessions_for_user("alice") == []

    @pytest.mark.gen_test
    async def test_update_moves_the_user_binding(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid = new_sid()
        await store.set(sid, record(clock), expected_version=None)
        await store.set(sid, record(clock, user="carol"), expected_version=1)
        assert [i.fingerprint for i in await store.sessions_for_user("carol")] == [fingerprint(sid)]

    @pytest.mark.gen_test
    async def test_unicode_and_large_data_round_trip(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid = new_sid()
        text = '{"emoji":"😀🎉 ñ 中文","big":"' + "x" * 500_000 + '"}'
        await store.set(sid, record(clock, text), expected_version=None)
        got = await store.get(sid)
        assert got is not None and got.data == text

    # -- what a store keeps: checked before it is written (0.2) ---------------

    @pytest.mark.gen_test
    async def test_a_lone_surrogate_is_refused_before_anything_is_written(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid = new_sid()
        bad = '{"bio":"' + json.loads('"\\udcbf"') + '","ok":1}'
        with pytest.raises(TypeError, match=r"session\['bio'\].*lone surrogate"):
            await store.set(sid, record(clock, bad), expected_version=None)
        assert await store.get(sid) is None
        await store.set(sid, record(clock), expected_version=None)
        with pytest.raises(TypeError, match=r"session\['bio'\]"):
            await store.set(sid, record(clock, bad), expected_version=1)
        got = await store.get(sid)
        assert got is not None and (got.data, got.version) == ('{"a":1}', 1)

    @pytest.mark.gen_test
    async def test_user_ids_are_compared_as_text(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        users = {"42": new_sid(), "042": new_sid(), "4.2e1": new_sid(), "42abc": new_sid()}
        users.update({"0": new_sid(), "alice": new_sid(), "bob": new_sid()})
        for user, sid in users.items():
            await store.set(sid, record(clock, user=user), expected_version=None)
        as_int = new_sid()  # an int user id is the same user as its text
        await store.set(as_int, record(clock, user=42), expected_version=None)  # type: ignore[arg-type]
        for asked in (42, "42"):
            found = await store.sessions_for_user(asked)  # type: ignore[arg-type]
            assert {i.fingerprint for i in found} == {
                fingerprint(users["42"]),
                fingerprint(as_int),
            }
            assert all(i.user_id == "42" for i in found)
        assert await store.destroy_user_sessions(0) == 1  # type: ignore[arg-type]
        for user in ("alice", "bob", "042", "4.2e1", "42abc"):
            assert await store.get(users[user]) is not None, user
        assert await store.get(users["0"]) is None
        assert await store.destroy_user_session(42, fingerprint(as_int)) is True  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await store.destroy_user_sessions(None)  # type: ignore[arg-type]
        assert await store.length() == 6

    @pytest.mark.gen_test
    async def test_an_over_long_user_id_is_a_clear_error(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid = new_sid()
        with pytest.raises(ValueError, match="256 characters long; at most 255"):
            await store.set(sid, record(clock, user="u" * 256), expected_version=None)
        assert await store.get(sid) is None
        await store.set(sid, record(clock, user="u" * 255), expected_version=None)
        (info,) = await store.sessions_for_user("u" * 255)
        assert info.user_id == "u" * 255

    @pytest.mark.gen_test
    async def test_client_details_are_made_to_fit(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid = new_sid()
        now = int(clock())
        long_zone = "fe80::1ff:fe23:4567:890a%" + "wlp3s0-very-long-interface-name" * 3
        sent = SessionRecord(
            data="{}",
            created_at=now,
            expires_at=now + 60,
            user_id="dora",
            ip=long_zone,
            user_agent="Agent/" + "é" * 400,
        )
        await store.set(sid, sent, expected_version=None)
        (info,) = await store.sessions_for_user("dora")
        assert info.ip == "fe80::1ff:fe23:4567:890a"
        assert info.user_agent == ("Agent/" + "é" * 400)[:255]

    @pytest.mark.gen_test
    async def test_the_lifetime_is_kept_with_the_record(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid = new_sid()
        now = int(clock())
        await store.set(
            sid,
            SessionRecord(data="{}", created_at=now, expires_at=now + 60, ttl=60),
            expected_version=None,
        )
        got = await store.get(sid)
        assert got is not None and got.ttl == 60
        await store.set(
            sid, SessionRecord(data="{}", created_at=now, expires_at=now + 90), expected_version=1
        )
        got = await store.get(sid)
        assert got is not None and got.ttl is None and got.expires_at == now + 90
        with pytest.raises(ValueError):
            await store.set(
                sid,
                SessionRecord(data="{}", created_at=now, expires_at=now + 9, ttl=0),
                expected_version=2,
            )

    @pytest.mark.gen_test
    async def test_a_touch_under_another_lifetime_is_refused(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        # A request loaded the default lifetime; another set a day meanwhile.
        sid = new_sid()
        now = int(clock())
        await store.set(
            sid,
            SessionRecord(data="{}", created_at=now, expires_at=now + 86400, ttl=86400),
            expected_version=None,
        )
        (before,) = await store.all()
        clock.advance(2)
        assert await store.touch(sid, now + 2 + 60, ttl=None) is False
        got = await store.get(sid)
        assert got is not None and (got.expires_at, got.ttl, got.version) == (
            now + 86400,
            86400,
            1,
        )
        (after,) = await store.all()
        assert after.updated_at == before.updated_at  # a refused touch is no use
        # Under the stored lifetime it applies (shorter or not), and is a use.
        assert await store.touch(sid, now + 2 + 600, ttl=86400) is True
        got = await store.get(sid)
        assert got is not None and (got.expires_at, got.ttl) == (now + 602, 86400)
        (after,) = await store.all()
        assert after.updated_at == now + 2

    @pytest.mark.gen_test
    async def test_awkward_text_round_trips_byte_exact(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        awkward = "quote ' double \" backslash \\ \\' NUL \x00 %s %% ; -- # /* */ 😀 é 中"
        text = json.dumps({"v": awkward}, ensure_ascii=False)
        sids = [new_sid() for _ in range(4)]
        for sid in sids:
            await store.set(sid, record(clock), expected_version=None)
        # Concurrent saves: a store that coalesces them sends one batch.
        saved = await asyncio.gather(
            *(store.set(sid, record(clock, text), expected_version=1) for sid in sids)
        )
        assert saved == [2, 2, 2, 2]
        for sid in sids:
            got = await store.get(sid)
            assert got is not None and got.data == text
            assert json.loads(got.data)["v"] == awkward

    @pytest.mark.gen_test
    async def test_a_users_sessions_past_a_limit_end_least_recently_used_first(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        alice = [new_sid() for _ in range(4)]
        for sid in alice:  # alice[3] is the most recently used
            await store.set(sid, record(clock, user="alice"), expected_version=None)
            clock.advance(10)
        bob = new_sid()
        await store.set(bob, record(clock, user="bob"), expected_version=None)
        gone_by_now = new_sid()
        await store.set(gone_by_now, record(clock, user="alice", ttl=5), expected_version=None)
        clock.advance(6)  # an expired one does not count, and is not "ended"
        # alice[0] used again: now the newest.
        await store.touch(alice[0], int(clock()) + 3600, ttl=None)
        # alice[1] logs in again: it stays, with the most recently used other.
        assert await store.limit_user_sessions("alice", 2, current_sid=alice[1]) == 2
        assert {i.fingerprint for i in await store.sessions_for_user("alice")} == {
            fingerprint(alice[1]),
            fingerprint(alice[0]),
        }
        assert await store.get(bob) is not None
        assert await store.limit_user_sessions("alice", 2, current_sid=alice[1]) == 0
        assert await store.limit_user_sessions("alice", 1, current_sid=alice[1]) == 1
        assert [i.fingerprint for i in await store.sessions_for_user("alice")] == [
            fingerprint(alice[1])
        ]
        with pytest.raises(ValueError):
            await store.limit_user_sessions("alice", 0, current_sid=alice[1])

    @pytest.mark.gen_test
    async def test_an_update_does_not_undo_a_concurrent_touch(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        sid = new_sid()
        now = int(clock())
        await store.set(
            sid,
            SessionRecord(data="{}", created_at=now, expires_at=now + 100),
            expected_version=None,
        )
        assert await store.touch(sid, now + 500, ttl=None)  # another request slid it
        # A save that loaded the older expiry, and does not slide it itself:
        await store.set(
            sid,
            SessionRecord(data='{"a":1}', created_at=now, expires_at=now + 100),
            expected_version=1,
        )
        got = await store.get(sid)
        assert got is not None and (got.data, got.expires_at) == ('{"a":1}', now + 500)
        # A new lifetime (set_expiry) is written exactly, shorter or not.
        await store.set(
            sid,
            SessionRecord(data="{}", created_at=now, expires_at=now + 60, ttl=60),
            expected_version=2,
        )
        got = await store.get(sid)
        assert got is not None and (got.expires_at, got.ttl) == (now + 60, 60)

    @pytest.mark.gen_test
    async def test_user_ids_are_compared_byte_for_byte(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        # Issue 17, finding 4: a PAD SPACE collation made "alice " alice.
        names = ("alice", "alice ", "alice  ", "alice\t", " alice", "Alice", "ALICE", "alicé")
        names += ("alice\u0301", "alic\u00e9", "alice\n")
        users = {name: new_sid() for name in names}
        for name, sid in users.items():
            await store.set(sid, record(clock, user=name), expected_version=None)
        for name, sid in users.items():
            listed = await store.sessions_for_user(name)
            assert [(i.fingerprint, i.user_id) for i in listed] == [(fingerprint(sid), name)], name
        for name in names:  # none may end another's session by its fingerprint
            for other, sid in users.items():
                if other != name:
                    assert await store.destroy_user_session(name, fingerprint(sid)) is False
        # A login of "alice " capped at one session ends no session of alice.
        login = new_sid()
        await store.set(login, record(clock, user="alice "), expected_version=None)
        assert await store.limit_user_sessions("alice ", 1, current_sid=login) == 1
        assert await store.get(users["alice "]) is None
        for name in ("alice", "alice  ", "alice\t", "Alice"):
            assert await store.get(users[name]) is not None, name
        assert await store.destroy_user_sessions("alice ") == 1  # the login
        assert await store.destroy_user_sessions("alice ") == 0
        assert await store.destroy_user_sessions("alice", except_sid=users["alice"]) == 0
        assert await store.destroy_user_sessions("alice") == 1
        for name in names[1:]:
            if name != "alice ":
                assert await store.get(users[name]) is not None, name
                assert len(await store.sessions_for_user(name)) == 1, name

    @pytest.mark.gen_test
    async def test_the_cap_ends_the_least_recently_used_within_one_second(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        # Issue 17, finding 5: the clock does not move here; last use is
        # ordered all the same, and creation order breaks ties.
        for round_ in range(5):
            user = f"erin{round_}"
            sids = [new_sid() for _ in range(4)]
            for sid in sids:
                await store.set(sid, record(clock, user=user), expected_version=None)
            # sids[0] used again (a touch), sids[1] was not: it is the least
            # recently used; then sids[3] logs in with a cap of 3.
            assert await store.touch(sids[0], int(clock()) + 3600, ttl=None)
            assert await store.limit_user_sessions(user, 3, current_sid=sids[3]) == 1
            assert await store.get(sids[1]) is None
            listed = [i.fingerprint for i in await store.sessions_for_user(user)]
            assert listed == [fingerprint(sids[i]) for i in (0, 3, 2)], round_
            # A save is a use too: sids[2] becomes the most recent.
            await store.set(sids[2], record(clock, user=user), expected_version=1)
            listed = [i.fingerprint for i in await store.sessions_for_user(user)]
            assert listed == [fingerprint(sids[i]) for i in (2, 0, 3)], round_
            assert await store.limit_user_sessions(user, 2, current_sid=sids[0]) == 1
            assert await store.get(sids[3]) is None
