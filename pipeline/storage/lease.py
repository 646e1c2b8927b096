"""An hour's claim on an object store: a lease object at ``<partition>/.lock``.

On local disk an ``flock`` claims an hour (``locks.py``) and the kernel frees it when its holder
dies. Hosts sharing a bucket have no such kernel, so the claim is a small JSON object written
with S3 conditional requests: created with ``If-None-Match: *`` (only one writer can create
it), renewed and taken over with ``If-Match: <etag>`` (only if nobody changed it since it was
read). It names its owner and the time it expires; the holding process renews it every quarter
of ``[storage] lease_seconds``, so a claim whose holder died expires within that time and the
next run takes it over.

The owner is one run with ``--local-scheduler``; with a central scheduler it is that luigid
(its URL), because luigid already gives each task of the hour to exactly one of its workers:
workers of one luigid share the claim, while a run of any other scheduler is refused. An upload
checks the claim first (``check``), so a run that lost it (stalled past its lease) writes
nothing more. Wall clocks of the hosts must agree to well within the lease (NTP).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from pipeline.storage import s3
from pipeline.storage.layout import REPORT
from pipeline.storage.location import ObjectPath
from pipeline.storage.locks import PartitionBusy

log = logging.getLogger(__name__)


class ClaimLost(RuntimeError):
    """This run's claim on an hour expired or was taken over: it must not write more."""


@dataclass
class Lease:
    location: ObjectPath  # <partition>/.lock
    owner: str
    seconds: float
    etag: str
    expires: float  # epoch seconds, as last written to the store by this process
    release_at_exit: bool

    @property
    def partition(self) -> ObjectPath:
        """The folder the lease guards: its partition, or the partition's report folder."""
        return self.location.parent

    @property
    def guarded(self) -> str:
        return guarded(self.location)


def guarded(location: ObjectPath) -> str:
    """What a lease at ``location`` guards, as messages name it: ``partition <hour>`` for an
    hour's claim, ``the report of <hour>`` for ``<hour>/report/.lock``."""
    folder = location.parent
    if folder.name == REPORT:
        return f"the report of {folder.parent.name}"
    return f"partition {folder.name}"


#: How often the renewer looks at the leases it holds (seconds).
TICK = 0.5

_held: dict[str, Lease] = {}
_mutex = threading.Lock()
_renewer: list[threading.Thread] = []


def _body(owner: str, expires: float) -> bytes:
    return orjson.dumps(
        {
            "owner": owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "expires": datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds"),
            "expires_at": round(expires, 3),
        },
        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
    )


def read(location: ObjectPath) -> tuple[dict[str, object], str] | None:
    """The claim as stored, with its ETag; None when there is none."""
    found = s3.get(location)
    if found is None:
        return None
    try:
        claim = orjson.loads(found[0])
    except orjson.JSONDecodeError:
        claim = {}  # unreadable: treated as expired
    return (claim if isinstance(claim, dict) else {}), found[1]


def live(claim: dict[str, object], now: float | None = None) -> bool:
    expires = claim.get("expires_at")
    return isinstance(expires, int | float) and expires > (time.time() if now is None else now)


def acquire(location: ObjectPath, owner: str, seconds: float, release_at_exit: bool) -> bool:
    """Claim the hour for ``owner``; True if newly claimed by this process.

    Creates the claim if there is none, joins it if ``owner`` holds it already (workers of one
    luigid), takes it over if it expired; otherwise raises PartitionBusy naming the holder.
    """
    key = str(location)
    if key in _held:
        return False
    for _ in range(20):
        expires = time.time() + seconds
        current = read(location)
        if current is None:
            etag = s3.put_if(location, _body(owner, expires), None)
        else:
            claim, seen = current
            if claim.get("owner") != owner and live(claim):
                raise PartitionBusy(
                    f"{guarded(location)} is being written by another run "
                    f"({claim.get('owner')}, claim valid until {claim.get('expires')}); "
                    "this run leaves it alone"
                )
            etag = s3.put_if(location, _body(owner, expires), seen)
        if etag is not None:
            with _mutex:
                _held[key] = Lease(location, owner, seconds, etag, expires, release_at_exit)
            _start_renewer()
            return True
    raise PartitionBusy(f"{guarded(location)}: its claim kept changing; leaving it")


def renew(lease: Lease) -> bool:
    """Extend ``lease``; False (and forgotten) if another owner holds the claim now."""
    for _ in range(20):
        expires = time.time() + lease.seconds
        etag = s3.put_if(lease.location, _body(lease.owner, expires), lease.etag)
        if etag is not None:
            lease.etag, lease.expires = etag, expires
            return True
        current = read(lease.location)  # changed since we wrote it: by whom?
        if current is None or current[0].get("owner") != lease.owner:
            with _mutex:
                _held.pop(str(lease.location), None)
            log.error("lost the claim on %s to %s", lease.guarded, current)
            return False
        lease.etag = current[1]  # another worker of the same luigid renewed it: fine
    return False


def check(location: ObjectPath) -> None:
    """Before writing ``location``: if it is in a folder this process holds a lease on, the
    lease must still be ours (renewed now if it is due), or ClaimLost is raised. Of two leases
    over it (the hour's claim and its report's), the one on the nearer folder answers. Objects
    outside a claimed folder (``latest``) are guarded by their own conditional writes instead."""
    holding = [h for h in list(_held.values()) if location.key.startswith(h.partition.prefix)]
    if not holding:
        return
    lease = max(holding, key=lambda h: len(h.partition.prefix))
    if time.time() < lease.expires - lease.seconds / 2:
        return
    if not renew(lease):
        raise ClaimLost(
            f"{lease.guarded}: this run's claim expired or was taken over; {location} not written"
        )


def release(location: ObjectPath) -> None:
    """Give the claim up now (it is marked expired, not deleted: a conditional write suffices)."""
    with _mutex:
        lease = _held.pop(str(location), None)
    if lease is None:
        return
    etag = lease.etag
    for _ in range(20):
        if s3.put_if(lease.location, _body(lease.owner, time.time()), etag) is not None:
            return
        current = read(lease.location)
        if current is None or current[0].get("owner") != lease.owner:
            return  # someone else's now
        etag = current[1]


def _release_at_exit() -> None:
    for lease in list(_held.values()):
        if lease.release_at_exit and os.getpid() == _owner_pid:
            try:
                release(lease.location)
            except Exception:  # the claim then simply expires
                log.warning("could not release the claim on %s", lease.guarded)


def _renew_forever() -> None:
    """Renew each lease once a quarter of it has passed since it was last written."""
    while True:
        time.sleep(TICK)
        for lease in list(_held.values()):
            if time.time() >= lease.expires - lease.seconds * 3 / 4:
                try:
                    renew(lease)
                except Exception as exc:  # retried on the next tick; check() decides
                    log.warning("could not renew the claim on %s: %s", lease.guarded, exc)


_owner_pid = os.getpid()


def _start_renewer() -> None:
    """One daemon thread per process renews every lease it holds."""
    global _owner_pid
    if _renewer and _renewer[0].is_alive() and _owner_pid == os.getpid():
        return
    _owner_pid = os.getpid()
    thread = threading.Thread(target=_renew_forever, name="claim-renewer", daemon=True)
    thread.start()
    _renewer[:] = [thread]


def _after_fork_in_child() -> None:
    """A forked luigi worker starts with a free mutex, whatever the renewer held at the fork."""
    global _mutex
    _mutex = threading.Lock()


atexit.register(_release_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
