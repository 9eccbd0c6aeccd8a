"""The Redis client every process builds from the settings (kept apart from the runtime so the
receiver does not import the GitHub, Jira and toggle clients it never uses).

With ``RESPONDER_REDIS_SENTINELS`` the clients find the master through Sentinel: redis-py's
Sentinel-managed connections ask the Sentinels for the master's address each time they connect,
so after a failover the next connection goes to the new master. A connection still open to a
demoted master gets ``READONLY`` for a write: redis-py's Sentinel connection turns that into a
``ConnectionError`` (and disconnects), which both clients retry on a fresh connection, that is on
the new master. A write Redis refused with ``READONLY`` was not applied, so re-sending it is safe.
"""

from __future__ import annotations

import contextlib
from typing import Any

import hiredis
import redis.exceptions
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelManagedConnection
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import HiredisRespSerializer, parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection
from redis.typing import EncodableT
from redis.utils import SENTINEL

from responder.settings import Settings

# Redis could not be reached (down, restarting, unreachable): retry later, or answer 503. With
# Sentinel, "no master known" (MasterNotFoundError) is a ConnectionError too.
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# What a Sentinel is given to answer where the master is (a hung one must not hang a caller).
SENTINEL_TIMEOUT_SECONDS = 2.0
# What Redis answers a client blocked in BLPOP and the like when its server turns into a replica.
UNBLOCKED_BY_DEMOTION = "UNBLOCKED force unblock from blocking operation, instance state changed"


def redis_client(settings: Settings) -> Redis:
    """The client of the receiver's threads, the workers, the scheduler and the CLI.

    With Sentinel, and only then, a command is re-sent when Redis refused it because the
    connection's server is no longer the master (the error redis-py's Sentinel connection raises
    for ``READONLY``), never on other errors: a command whose reply was lost may have been applied.
    """
    options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 3, "health_check_interval": 30}
    if not settings.redis_sentinels:
        return Redis.from_url(settings.redis_url, **options)
    sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]  # untyped in redis-py
        _sentinel_addresses(settings), sentinel_kwargs=_sentinel_options(settings)
    )
    retry = Retry(ExponentialWithJitterBackoff(base=0.1, cap=1.0), retries=3, supported_errors=(_DemotedMaster,))
    return sentinel.master_for(  # type: ignore[no-any-return, no-untyped-call, unused-ignore]  # untyped
        _master_name(settings),
        connection_class=_MasterConnection,
        retry=retry,
        **{**options, **_url_options(settings.redis_url)},  # the URL's options win, as with from_url
    )


def async_redis_client(settings: Settings) -> AsyncRedis:
    """The same, for the receiver's event loop (the webhook's commits).

    Unlike the synchronous client, redis.asyncio does not by default retry a command whose
    pooled connection Redis closed (after a Redis restart): it is told to. Retrying the intake's
    commit is safe: a commit that did apply before the connection dropped fails its own
    conditions the second time, and the intake decides again (its alerts then read as duplicates).

    No timeout per command: with one, redis.asyncio runs every send under ``asyncio.wait_for``,
    a task of its own and a turn of the event loop per command. The caller bounds each commit
    as a whole instead, round trips and retries together (``groupcommit.COMMIT_TIMEOUT_SECONDS``).

    With Sentinel the connections are ``_HiredisPackingSentinelConnection``: Sentinel's
    connection (where to connect, ``READONLY`` as a dropped connection) with the packing here.
    The retries above then also cover a failover: a commit refused by a demoted master, or one
    whose connection the old master's death cut, is sent again to the master Sentinel names.
    """
    options: dict[str, Any] = {
        "socket_timeout": None,
        "socket_connect_timeout": 3,
        "health_check_interval": 30,
        "retry": AsyncRetry(ExponentialWithJitterBackoff(base=0.1, cap=1.0), retries=3),
        "retry_on_error": list(REDIS_DOWN),
    }
    if not settings.redis_sentinels:
        return AsyncRedis.from_url(settings.redis_url, connection_class=_HiredisPackingConnection, **options)
    sentinel = AsyncSentinel(  # type: ignore[no-untyped-call, unused-ignore]  # untyped in redis-py
        _sentinel_addresses(settings), sentinel_kwargs=_sentinel_options(settings)
    )
    return sentinel.master_for(  # type: ignore[no-any-return, unused-ignore]  # untyped in redis-py
        _master_name(settings),
        connection_class=_HiredisPackingSentinelConnection,
        **{**options, **_url_options(settings.redis_url)},
    )


def _sentinel_addresses(settings: Settings) -> list[tuple[str, int]]:
    addresses = []
    for entry in settings.redis_sentinels:  # validated host:port
        host, _, port = entry.rpartition(":")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    password = settings.redis_sentinel_password
    return {
        "socket_timeout": SENTINEL_TIMEOUT_SECONDS,
        "socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
        "password": password.get_secret_value() if password else None,
    }


def _master_name(settings: Settings) -> str:
    assert settings.redis_sentinel_master, "settings require it with redis_sentinels"
    return settings.redis_sentinel_master


def _url_options(url: str) -> dict[str, Any]:
    """What RESPONDER_REDIS_URL still gives with Sentinel: the database, user, password and query
    options; its host and port are the Sentinels' to say."""
    options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call, unused-ignore]  # untyped in redis-py
    options.pop("host", None)
    options.pop("port", None)
    return options


class _DemotedMaster(redis.exceptions.ConnectionError):
    """Redis answered READONLY: the server this connection reached is no longer the master."""


class _MasterConnection(SentinelManagedConnection):
    """Sentinel's connection to the master, with three changes (redis-py 8.1).

    A connection reconnected to send a command asks the Sentinels where the master is
    (``send_packed_command``; redis-py's goes back to the address it had, the old master), and
    one still open to a server other than the master the Sentinels last named (to any connection
    sharing its pool's proxy, RQ's scheduler's pool too) is reconnected first: otherwise reads
    and SCRIPT LOAD would go on being served by the demoted master. Its
    "previous master is now a slave" error (for ``READONLY``) is raised as ``_DemotedMaster``, as
    is the ``UNBLOCKED`` a blocked command gets when its server is demoted, so that the client
    retries exactly those errors (neither command was applied). And a read that fails or is interrupted
    disconnects, as a plain connection's does: redis-py's Sentinel connection keeps the
    connection by default, so a read cut short (RQ's warm shutdown raises ``StopRequested``
    inside a worker's blocking pop) left the reply pending, and the next command on that pooled
    connection read it, or waited forever.
    """

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        master = self.connection_pool.master_address  # the last the Sentinels named to any connection here
        if self._sock and master is not None and (self.host, self.port) != master:
            self.disconnect()  # type: ignore[no-untyped-call, unused-ignore]  # a failover since it connected
        if not self._sock:
            self.connect()  # type: ignore[no-untyped-call, unused-ignore]  # untyped in redis-py
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call, unused-ignore]

    def read_response(
        self,
        disable_decoding: bool = False,
        *,
        timeout: float | object = SENTINEL,
        disconnect_on_error: bool | None = True,
        push_request: bool | None = False,
    ) -> Any:
        try:
            return super().read_response(
                disable_decoding=disable_decoding,
                timeout=timeout,
                disconnect_on_error=disconnect_on_error,
                push_request=push_request,
            )
        except redis.exceptions.ConnectionError as exc:
            if isinstance(exc.__context__, redis.exceptions.ReadOnlyError):  # raised while handling it
                raise _DemotedMaster(str(exc)) from exc
            raise
        except redis.exceptions.ResponseError as exc:
            if not str(exc).startswith(UNBLOCKED_BY_DEMOTION):
                raise
            self.disconnect()  # type: ignore[no-untyped-call, unused-ignore]  # a blocking pop (a worker waiting for a job) whose server became a replica
            raise _DemotedMaster(str(exc)) from exc


class _HiredisPackingConnection(AsyncConnection):
    """redis.asyncio packs commands in Python, argument by argument, and an intake commit has
    thousands. This connection packs them with hiredis, in C (hiredis is a
    dependency), as the synchronous client does, but without its pass over every argument
    looking for bytearray and memoryview: only a command hiredis refuses takes that path."""

    _packer = HiredisRespSerializer()  # type: ignore[no-untyped-call, unused-ignore]  # typed before redis-py 8.2

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " not in name:
            try:
                return [hiredis.pack_command(args)]  # type: ignore[arg-type]  # bytearray: TypeError
            except TypeError:
                pass
        packed: list[bytes] = self._packer.pack(*args)  # type: ignore[arg-type]
        return packed


class _HiredisPackingSentinelConnection(_HiredisPackingConnection, AsyncSentinelManagedConnection):
    """The packing above on Sentinel's connection: the two override different methods
    (``pack_command``; ``connect`` and ``read_response``), so both apply. As for the synchronous
    ``_MasterConnection``, a connection (re)connects to send a command to the master the Sentinels name."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        master = self.connection_pool.master_address
        if self.is_connected and master is not None and (self.host, self.port) != master:
            await self.disconnect()
        if not self.is_connected:
            await self.connect()  # type: ignore[no-untyped-call, unused-ignore]  # untyped in redis-py
        await super().send_packed_command(command, check_health)


class KeptConnectionScript:
    """A registered script, called on connections it keeps out of the pool between calls.

    ``AsyncScript`` goes through ``execute_command``: a pool checkout and check-in, a retry
    wrapper and redis-py's observability hooks around every call, a good part of the call's CPU
    (the intake makes one per commit, a thousand or more a second in a storm; bench/ has the figures).
    A call that finds a kept connection only sends the packed EVALSHA and reads the reply.
    Anything else goes through ``AsyncScript``, with the client's retries and its SCRIPT LOAD:
    no connection kept yet (the first calls, or more at once than ``keep``), a dropped one (a
    Redis restart), a script Redis no longer knows. A connection that failed or was cut off
    mid-call (a cancelled commit) is disconnected, never kept. Re-sending a call whose reply
    was lost is the caller's to make safe, as with the client's own retries (the intake's
    commit is: its conditions fail the second time).
    """

    def __init__(self, redis: AsyncRedis, script: str, *, keep: int = 2) -> None:
        self.registered_client = redis
        self._script = redis.register_script(script)
        self._keep = keep
        self._kept: list[AsyncConnection] = []

    async def __call__(self, keys: list[str], args: list[EncodableT]) -> Any:
        if self._kept:
            conn = self._kept.pop()
            try:
                await conn.send_packed_command(
                    conn.pack_command("EVALSHA", self._script.sha, len(keys), *keys, *args), check_health=False
                )
                reply = await conn.read_response()
            except redis.exceptions.NoScriptError:
                self._kept.append(conn)  # the connection is sound; AsyncScript loads the script
            except REDIS_DOWN:
                await self._discard(conn)  # AsyncScript reconnects, with retries
            except BaseException:
                await self._discard(conn)
                raise
            else:
                self._kept.append(conn)
                return reply
        reply = await self._script(keys=keys, args=args)
        if len(self._kept) < self._keep:
            with contextlib.suppress(*REDIS_DOWN):  # the call went through: its reply is not lost over this
                self._kept.append(await self.registered_client.connection_pool.get_connection())  # type: ignore[no-untyped-call]
        return reply

    async def _discard(self, conn: AsyncConnection) -> None:
        with contextlib.suppress(Exception):
            await conn.disconnect(nowait=True)
        await self.registered_client.connection_pool.release(conn)


class NotReplicated(Exception):
    """Fewer replicas than RESPONDER_REDIS_MIN_REPLICAS hold a commit (or were connected to take it):
    the webhook answers 503 and Alertmanager sends the notification again."""


REPLICA_WAIT_MS = 2000  # WAIT's timeout: well inside Alertmanager's 10 s for the whole answer


class ReplicatedScript:
    """The commit script when ``RESPONDER_REDIS_MIN_REPLICAS`` is ``replicas`` >= 1, on one connection:
    ``INFO replication`` first (fewer replicas connected: NotReplicated, and nothing is written),
    then EVALSHA (SCRIPT LOAD on NOSCRIPT), then ``WAIT replicas REPLICA_WAIT_MS``, which counts the
    replicas that acknowledged this connection's writes. Fewer: NotReplicated. The commit is then
    on the master all the same; the sender's retry of the notification reads it as a duplicate and
    is answered once it has reached the replicas."""

    def __init__(self, redis: AsyncRedis, script: str, *, replicas: int) -> None:
        self.registered_client = redis
        self._script = redis.register_script(script)
        self._replicas = replicas

    async def __call__(self, keys: list[str], args: list[EncodableT]) -> Any:
        pool = self.registered_client.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_command("INFO", "replication")
            connected = _connected_replicas(await conn.read_response())
            if connected < self._replicas:
                raise NotReplicated(f"{connected} replica(s) online, {self._replicas} required")
            reply = await self._evalsha(conn, keys, args)
            await conn.send_command("WAIT", self._replicas, REPLICA_WAIT_MS)
            acknowledged = int(await conn.read_response())
            if acknowledged < self._replicas:
                raise NotReplicated(
                    f"the commit reached {acknowledged} replica(s) in {REPLICA_WAIT_MS} ms, {self._replicas} required"
                )
            return reply
        except (NotReplicated, redis.exceptions.ResponseError):
            raise
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            raise
        finally:
            await pool.release(conn)

    async def _evalsha(self, conn: AsyncConnection, keys: list[str], args: list[EncodableT]) -> Any:
        try:
            await conn.send_command("EVALSHA", self._script.sha, len(keys), *keys, *args)
            return await conn.read_response()
        except redis.exceptions.NoScriptError:
            await conn.send_command("SCRIPT", "LOAD", self._script.script)
            await conn.read_response()
            await conn.send_command("EVALSHA", self._script.sha, len(keys), *keys, *args)
            return await conn.read_response()


def _connected_replicas(info: Any) -> int:
    """The replicas online in ``INFO replication`` (``slaveN:...,state=online,...``): one still
    taking its first copy (``wait_bgsave``, ``send_bulk``) acknowledges nothing yet."""
    text = info.decode() if isinstance(info, bytes) else str(info)
    return sum(1 for line in text.splitlines() if line.startswith("slave") and ",state=online," in line)
