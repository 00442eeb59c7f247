"""Read new mail from an existing IMAP mailbox and hand each message's raw
bytes to a store, exactly once per (UIDVALIDITY, UID) (PROTOCOLS.md P1).

The poller keeps no state: the store's checkpoint (the highest UID already
ingested, with the UIDVALIDITY it belongs to) is read afresh every round,
and `ImapStore.ingest` stores a message and advances the checkpoint in one
transaction. A crash before that commit means the message is fetched again
next round; a crash after it means the checkpoint has moved on. Either way
nothing is lost and nothing is stored twice.

Decisions:
- Messages are fetched with BODY.PEEK[] and no flag is ever set: the mailbox
  may be shared with people and other clients, \\Seen means "a person read
  it", and the checkpoint, not flags, says what was ingested.
- A UIDVALIDITY other than the checkpoint's means the mailbox was recreated
  and its UIDs renumbered: everything is read again from UID 1. This can
  re-read mail that was already ingested; the server's ingest dedupes on
  Message-ID, so that is safe.
- A first poll (no checkpoint) reads the whole mailbox. A store that wants
  only new mail seeds its checkpoint instead.
- A message over `max_message_bytes` is not downloaded and not silently
  skipped: `ImapStore.oversized` records it (and advances the checkpoint).
- Messages go to the store one at a time in UID order; when the store raises,
  the round stops there (`ImapIngestError`) and the same UID comes next time.
- It relies on UIDs being assigned in ascending order as messages become
  visible (RFC 3501 2.3.1.1); a server that made UID 7 visible after UID 8
  had been read would have 7 skipped.

Connectors never touch the database: the store is the server's side,
passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from connectors.email.imap_client import (
    ImapAccount,
    ImapAuthError,
    ImapConnectionError,
    ImapError,
    ImapProtocolError,
    ImapSession,
    ImapTlsError,
    Security,
)
from connectors.email.limits import DEFAULT_LIMITS

__all__ = [
    "Checkpoint",
    "ImapAccount",
    "ImapAuthError",
    "ImapConnectionError",
    "ImapError",
    "ImapIngestError",
    "ImapPoller",
    "ImapProtocolError",
    "ImapStore",
    "ImapTlsError",
    "PollResult",
    "Security",
    "poll_once",
]

T = TypeVar("T")
_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    uidvalidity: int
    last_uid: int  # highest UID already ingested (committed)


class ImapStore(Protocol):
    """The server's side of the poller, for one account and mailbox."""

    async def checkpoint(self) -> Checkpoint | None:
        """The last committed checkpoint, None before the first message."""
        ...

    async def ingest(self, raw: bytes, *, uidvalidity: int, uid: int) -> None:
        """Store the message AND advance the checkpoint to `uid` in ONE
        transaction. Raising means nothing was stored: the poller stops this
        round and the same UID is fetched again next time."""
        ...

    async def oversized(self, *, uidvalidity: int, uid: int, size: int) -> None:
        """The message is over the size limit and was not downloaded: record
        that (for the quarantine view) AND advance the checkpoint to `uid`,
        in ONE transaction. Raising works as for `ingest`."""
        ...


@dataclasses.dataclass(frozen=True)
class PollResult:
    ingested: int
    uidvalidity: int
    last_uid: int  # highest UID ingested under `uidvalidity` after this round (0: none)
    idle_supported: bool
    oversized: int = 0
    more: bool = False  # the round stopped at `batch`; poll again at once


class ImapIngestError(ImapError):
    """The store refused a message; the cause is the store's exception."""

    def __init__(self, *, uidvalidity: int, uid: int) -> None:
        super().__init__(f"the store failed to ingest UID {uid} (UIDVALIDITY {uidvalidity})")
        self.uidvalidity = uidvalidity
        self.uid = uid


async def poll_once(
    account: ImapAccount,
    store: ImapStore,
    *,
    batch: int = 50,
    max_message_bytes: int = DEFAULT_LIMITS.max_bytes,
) -> PollResult:
    """Connect, ingest up to `batch` new messages, log out.

    Raises ImapError (ImapAuthError for a refused login, ImapIngestError when
    the store fails) or OSError (refused connection, TLS certificate)."""
    _check_limits(batch, max_message_bytes)
    session = await ImapSession.open(account)
    try:
        result = await _poll(session, store, batch=batch, max_message_bytes=max_message_bytes)
    except ImapIngestError:
        await session.logout()  # the connection is fine; the store is not
        raise
    except BaseException:
        session.close()
        raise
    await session.logout()
    return result


async def _poll(
    session: ImapSession,
    store: ImapStore,
    *,
    batch: int,
    max_message_bytes: int,
    stop: asyncio.Event | None = None,
) -> PollResult:
    uidvalidity = session.uidvalidity
    checkpoint = await store.checkpoint()  # fresh every round: the store's is the truth
    last_uid = 0
    if checkpoint is not None and checkpoint.uidvalidity == uidvalidity:
        last_uid = checkpoint.last_uid
    uids = await session.search_after(last_uid)
    ingested = oversized = 0
    for uid in uids[:batch]:
        if stop is not None and stop.is_set():
            break
        size = await session.fetch_size(uid)
        if size is None:
            continue  # expunged since the SEARCH: nothing left to ingest
        raw = None
        if size <= max_message_bytes:
            # One byte over the limit is enough to know it is over.
            raw = await session.fetch_raw(uid, limit=max_message_bytes + 1)
            if raw is None:
                continue  # expunged meanwhile
            if len(raw) > max_message_bytes:  # RFC822.SIZE was wrong
                size, raw = len(raw), None
        try:
            if raw is None:
                await store.oversized(uidvalidity=uidvalidity, uid=uid, size=size)
                oversized += 1
            else:
                await store.ingest(raw, uidvalidity=uidvalidity, uid=uid)
                ingested += 1
        except Exception as exc:
            raise ImapIngestError(uidvalidity=uidvalidity, uid=uid) from exc
        last_uid = uid
    return PollResult(
        ingested=ingested,
        uidvalidity=uidvalidity,
        last_uid=last_uid,
        idle_supported=session.idle_supported,
        oversized=oversized,
        more=len(uids) > batch,
    )


class ImapPoller:
    """Keeps one account's mailbox ingested until `stop` is set.

    With IDLE (RFC 2177) it stays connected and polls when the server
    announces a change, and at least every `idle_timeout`; without, it polls
    every `poll_interval` on a fresh connection. Failures go to `on_error`
    (default: logged) and the poller reconnects after a capped, jittered
    exponential backoff, reset by the next successful round."""

    def __init__(
        self,
        account: ImapAccount,
        store: ImapStore,
        *,
        poll_interval: float = 60.0,
        idle_timeout: float = 25 * 60,
        on_error: Callable[[Exception], None] | None = None,
        batch: int = 50,
        max_message_bytes: int = DEFAULT_LIMITS.max_bytes,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
    ) -> None:
        _check_limits(batch, max_message_bytes)
        self.account = account
        self.store = store
        self.poll_interval = poll_interval
        self.idle_timeout = idle_timeout
        self.on_error = on_error
        self.batch = batch
        self.max_message_bytes = max_message_bytes
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._polled = False

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; never raises except CancelledError."""
        delay = self.backoff_initial
        while not stop.is_set():
            self._polled = False
            try:
                await self._run_connected(stop)
            except Exception as exc:
                self._report(exc)
            else:
                delay = self.backoff_initial
                continue
            if self._polled:  # this connection worked for a while: start over
                delay = self.backoff_initial
            # Jitter: many accounts on one failing server don't retry in step.
            await _wait(stop, delay * random.uniform(0.5, 1.0))  # noqa: S311 - not a secret
            delay = min(delay * 2, self.backoff_max)

    async def _run_connected(self, stop: asyncio.Event) -> None:
        """Connect and poll until `stop`; returns normally only then or
        between polls of a server without IDLE."""
        session = await _unless_stopped(stop, ImapSession.open(self.account))
        if session is None:
            return
        try:
            while not stop.is_set():
                result = await _poll(
                    session,
                    self.store,
                    batch=self.batch,
                    max_message_bytes=self.max_message_bytes,
                    stop=stop,
                )
                self._polled = True
                if result.more or session.exists_seen:
                    continue  # more waiting, or new mail announced mid-round
                if not result.idle_supported:
                    break
                await session.idle(stop, max_wait=self.idle_timeout)
        except BaseException:
            session.close()
            raise
        await session.logout()
        if not session.idle_supported:
            await _wait(stop, self.poll_interval)

    def _report(self, exc: Exception) -> None:
        if self.on_error is None:
            _log.warning(
                "IMAP polling of %s@%s:%s failed: %s",
                self.account.username,
                self.account.host,
                self.account.port,
                exc,
                exc_info=not isinstance(exc, ImapError | OSError),
            )
            return
        try:
            self.on_error(exc)
        except Exception:
            _log.exception("the on_error callback of the IMAP poller failed")


def _check_limits(batch: int, max_message_bytes: int) -> None:
    if batch < 1 or max_message_bytes < 1:
        raise ValueError("batch and max_message_bytes must be at least 1")


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, waking at once when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _unless_stopped(stop: asyncio.Event, awaitable: Awaitable[T]) -> T | None:
    """`awaitable`'s result, or None (it cancelled) if `stop` comes first."""
    work = asyncio.ensure_future(awaitable)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work.cancel()
        raise
    finally:
        stopped.cancel()
    if work.done():
        return work.result()
    work.cancel()
    await asyncio.wait({work})  # let it clean up (an open session closes itself)
    return None
