"""Session data sealed at rest (`tornado_sessions.sealing`), on `MemoryStore`
and through real HTTP requests.  tests/mysql/test_sealing.py checks the same
on MySQL, down to what ``SELECT data`` and mysqldump of a live table show."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Browser, FakeClock, MarkedSealing, RecordingStore, body, sid_of, unseal
from tornado_sessions import MemoryStore
from tornado_sessions.sealing import PREFIX, Unsealable, is_sealed, open_data, seal
from tornado_sessions.stores.base import SessionRecord, hash_sid
from tornado_sessions.stores.records import replaced

NAME = "__Host-session"

TEXT = '{"cart":["rare-book-4711"],"role":"admin","token":"tok-93f2"}'


def new_sid() -> str:
    return secrets.token_urlsafe(32)


def test_sealed_text_opens_only_under_its_own_id_and_row() -> None:
    sid = new_sid()
    sealed = seal(sid, hash_sid(sid), TEXT)
    assert sealed.startswith(PREFIX) and is_sealed(sealed)
    for secret in ("rare-book-4711", "admin", "tok-93f2", "cart", "role", "{"):
        assert secret not in sealed
    assert open_data(sid, hash_sid(sid), sealed) == TEXT
    # A fresh nonce each time: two seals of one text differ.
    assert seal(sid, hash_sid(sid), TEXT) != sealed

    other = new_sid()
    with pytest.raises(Unsealable):  # another id: another key and another row
        open_data(other, hash_sid(other), sealed)
    with pytest.raises(Unsealable):  # the right id, but the row of another
        open_data(sid, hash_sid(other), sealed)
    with pytest.raises(Unsealable):  # another id under this row's key
        open_data(other, hash_sid(sid), sealed)


@pytest.mark.parametrize(
    "damage",
    [
        "flip",  # one bit of the ciphertext
        "cut",  # the tag cut off
        "short",  # less than a nonce and a tag
        "not-base64",
        "not-ascii",
    ],
)
def test_altered_sealed_text_does_not_open(damage: str) -> None:
    sid = new_sid()
    sealed = seal(sid, hash_sid(sid), TEXT)
    raw = bytearray(base64.b64decode(sealed[len(PREFIX) :]))
    if damage == "flip":
        raw[20] ^= 1
        bad = PREFIX + base64.b64encode(raw).decode()
    elif damage == "cut":
        bad = PREFIX + base64.b64encode(raw[:-16]).decode()
    elif damage == "short":
        bad = PREFIX + base64.b64encode(raw[:20]).decode()
    elif damage == "not-base64":
        bad = PREFIX + "!!not base64!!"
    else:
        bad = PREFIX + "é" * 40
    with pytest.raises(Unsealable):
        open_data(sid, hash_sid(sid), bad)


def test_plain_json_of_an_older_row_passes_as_it_is() -> None:
    sid = new_sid()
    assert open_data(sid, hash_sid(sid), TEXT) == TEXT
    assert not is_sealed(TEXT)


def test_unicode_round_trips_sealed() -> None:
    sid = new_sid()
    text = json.dumps({"emoji": "🍪", "é": "ü" * 1000}, ensure_ascii=False)
    assert open_data(sid, hash_sid(sid), seal(sid, hash_sid(sid), text)) == text


def test_a_text_read_again_opens_from_what_was_verified_and_nothing_else() -> None:
    """The process keeps each session's last sealed text with its JSON: the
    very same text in the very same row opens without decryption; any other
    text, row or id goes through the cipher as before."""
    from tornado_sessions import sealing

    sid, other = new_sid(), new_sid()
    older = seal(sid, hash_sid(sid), '{"role":"admin"}')
    sealed = seal(sid, hash_sid(sid), TEXT)
    assert sealing._opened[sid] == (hash_sid(sid), sealed, TEXT)
    assert open_data(sid, hash_sid(sid), sealed) == TEXT
    # An earlier value of the same session still opens (documented: sealing
    # does not authenticate against time), by decryption, and is kept then.
    assert open_data(sid, hash_sid(sid), older) == '{"role":"admin"}'
    assert sealing._opened[sid][1] == older
    # Kept for sid, the text opens neither for another id nor in another row.
    with pytest.raises(Unsealable):
        open_data(other, hash_sid(other), older)
    with pytest.raises(Unsealable):
        open_data(sid, hash_sid(other), older)
    flipped = older[:-5] + ("A" if older[-5] != "A" else "B") + older[-4:]
    with pytest.raises(Unsealable):
        open_data(sid, hash_sid(sid), flipped)


def test_the_opened_texts_kept_are_bounded_in_count_and_size() -> None:
    from tornado_sessions import sealing

    big = new_sid()
    text = json.dumps({"blob": "x" * sealing.OPENED_MAX_TEXT})
    sealed = seal(big, hash_sid(big), text)
    assert big not in sealing._opened  # too long to keep
    assert open_data(big, hash_sid(big), sealed) == text
    assert big not in sealing._opened
    for _ in range(sealing.OPENED_CACHE + 10):
        sid = new_sid()
        seal(sid, hash_sid(sid), TEXT)
    assert len(sealing._opened) == sealing.OPENED_CACHE


@pytest.mark.gen_test
async def test_memory_store_keeps_only_sealed_data(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    sid = new_sid()
    now = int(clock())
    record = SessionRecord(data=TEXT, created_at=now, expires_at=now + 60)
    assert await store.set(sid, record, expected_version=None) == 1
    (kept,) = store._records.values()
    assert is_sealed(kept.data) and "admin" not in kept.data
    got = await store.get(sid)
    assert got is not None and got.data == TEXT
    assert await store.count_unsealed() == 0


@pytest.mark.gen_test
async def test_memory_store_row_copied_to_another_id_reads_as_missing(
    clock: FakeClock, caplog: Any
) -> None:
    store = MemoryStore(clock=clock)
    victim, attacker = new_sid(), new_sid()
    now = int(clock())
    await store.set(
        victim, SessionRecord(data=TEXT, created_at=now, expires_at=now + 60), expected_version=None
    )
    await store.set(
        attacker,
        SessionRecord(data="{}", created_at=now, expires_at=now + 60),
        expected_version=None,
    )
    store._records[hash_sid(attacker)] = store._records[hash_sid(victim)]
    with caplog.at_level(logging.WARNING, logger="tornado_sessions"):
        assert await store.get(attacker) is None
    (line,) = [r.getMessage() for r in caplog.records if "does not open" in r.getMessage()]
    assert hash_sid(attacker).hex()[:12] in line and attacker not in line
    got = await store.get(victim)
    assert got is not None and got.data == TEXT  # the original is untouched


@pytest.mark.gen_test
async def test_plain_row_is_read_then_sealed_at_its_next_write(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    sid = new_sid()
    now = int(clock())
    # A row as 0.2 left it: plain JSON.
    store._records[hash_sid(sid)] = SessionRecord(
        data='{"n":1}', created_at=now, expires_at=now + 60, version=3
    )
    assert await store.count_unsealed() == 1
    got = await store.get(sid)
    assert got is not None and got.data == '{"n":1}' and got.version == 3
    await store.set(
        sid, SessionRecord(data='{"n":2}', created_at=now, expires_at=now + 60), expected_version=3
    )
    assert await store.count_unsealed() == 0
    assert unseal(sid, store._records[hash_sid(sid)].data) == '{"n":2}'


@pytest.mark.gen_test
async def test_http_sessions_are_sealed_in_the_store(
    app: Any, browser: Browser, store: RecordingStore
) -> None:
    response = await browser.get('/set?k=card&v="4111-1111"')
    assert response.code == 200
    sid = sid_of(app, browser.jar[NAME])
    inner = store.inner
    assert isinstance(inner, MemoryStore)
    (kept,) = inner._records.values()
    assert "4111" not in kept.data and "card" not in kept.data
    assert json.loads(unseal(sid, kept.data)) == {"card": "4111-1111"}
    assert body(await browser.get("/read"))["data"] == {"card": "4111-1111"}


@pytest.mark.gen_test
async def test_http_copied_row_gives_a_fresh_session_not_an_error(
    app: Any, browser: Browser, store: RecordingStore, http_client: Any, base_url: str
) -> None:
    await browser.get('/set?k=secret&v="victim-data"')
    victim = sid_of(app, browser.jar[NAME])
    other = Browser(http_client, base_url)
    await other.get('/set?k=mine&v="attacker"')
    attacker = sid_of(app, other.jar[NAME])
    inner = store.inner
    assert isinstance(inner, MemoryStore)
    inner._records[hash_sid(attacker)] = inner._records[hash_sid(victim)]

    response = await other.get("/read")
    assert response.code == 200
    assert body(response) == {"data": {}, "new": True}
    # The victim's session is unaffected.
    assert body(await browser.get("/read"))["data"] == {"secret": "victim-data"}


def test_the_micro_benchmark_runs() -> None:
    """bench/sealing.py (µs per seal and open by size) runs; no timing is asserted."""
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, str(repo / "bench" / "sealing.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["sealing"]
    assert [r["size"] for r in results] == [64, 512, 4096, 65536]
    assert all(r["seal_us"] > 0 and r["open_us"] > 0 and r["open_again_us"] > 0 for r in results)
    # Stored size: base64 of nonce, ciphertext and tag, behind the prefix.
    assert all(r["sealed_size"] == 3 + 4 * -(-(r["size"] + 28) // 3) for r in results)


class Marked(MarkedSealing, MemoryStore):
    """A store whose own sealing marks the text."""


@pytest.mark.gen_test
async def test_memory_store_keeps_what_its_seal_hook_gives_and_reads_through_its_open_hook(
    clock: FakeClock,
) -> None:
    store = Marked(clock=clock)
    sid = new_sid()
    now = int(clock())
    record = SessionRecord(data=TEXT, created_at=now, expires_at=now + 60, user_id="alice")
    assert await store.set(sid, record, expected_version=None) == 1
    assert await store.set(sid, record, expected_version=1) == 2
    (kept,) = store._records.values()
    assert kept.data == "marked:" + TEXT and kept.user_id == "alice" and kept.version == 2
    got = await store.get(sid)
    assert got is not None and got.data == TEXT and got.version == 2 and got.user_id == "alice"
    # A text the open hook refuses is a missing session.
    store._records[hash_sid(sid)] = replaced(kept, data=TEXT)
    assert await store.get(sid) is None


# -- nonces: drawn in batches, each used once ----------------------------------


def _nonce_of(stored: str) -> bytes:
    return base64.b64decode(stored[len(PREFIX) :])[:12]


def test_every_seal_uses_a_nonce_of_its_own_across_batches_and_threads() -> None:
    import threading

    from tornado_sessions import sealing

    sid = new_sid()
    key = hash_sid(sid)
    count = sealing.NONCE_BATCH * 5 + 3  # several refills, one cut short
    found: list[bytes] = []

    def work() -> None:
        mine = [_nonce_of(seal(sid, key, TEXT)) for _ in range(count)]
        found.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(found) == 4 * count
    assert len(set(found)) == len(found)  # no nonce twice, whichever thread drew it


def test_a_forked_child_never_uses_a_nonce_of_its_parents() -> None:
    import os

    from tornado_sessions import sealing

    sid = new_sid()
    key = hash_sid(sid)
    # The parent now holds a batch of unused nonces: a fresh one (whatever
    # the tests before left, a seal may take the last of a batch).
    sealing._nonces.clear()
    seal(sid, key, TEXT)
    assert len(sealing._nonces) == sealing.NONCE_BATCH - 1
    pending = set(sealing._nonces)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: seal twice, report the nonces, leave at once
        try:
            os.close(read)
            for _ in range(2):
                os.write(write, _nonce_of(seal(sid, key, TEXT)))
        finally:
            os._exit(0)
    os.close(write)
    try:
        child = b""
        while len(child) < 24:
            chunk = os.read(read, 24 - len(child))
            if not chunk:
                break
            child += chunk
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert len(child) == 24
    parent = _nonce_of(seal(sid, key, TEXT))
    assert parent in pending  # the parent goes on with its batch
    assert child[:12] not in pending and child[12:] not in pending
