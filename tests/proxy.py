"""A TCP proxy on loopback that can freeze: the dependency behind it goes silent, as a hung
server or a dropped network path does, while every socket stays open."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


class FreezableProxy:
    """Forwards bytes between clients and `target_host:target_port`.

    `freeze()` stops forwarding in both directions (connections are still accepted and
    kept open, nothing is refused or reset); `thaw()` lets the held bytes through again.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._upstreams: set[asyncio.StreamWriter] = set()  # toward the target
        # Round trips: bursts the clients sent, each after an answer (or first on a socket).
        self.round_trips = 0
        self._answered: dict[asyncio.StreamWriter, bool] = {}
        self._peer: dict[asyncio.StreamWriter, asyncio.StreamWriter] = {}  # client -> upstream
        self._doomed: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "start the proxy first"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> FreezableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    def cut_open_connections(self) -> None:
        """The connections open now die at their client's next write, unseen until then,
        as a connection does that a restarted server or a NAT timeout dropped silently."""
        self._doomed.update(self._upstreams)

    def _count(self, writer: asyncio.StreamWriter) -> None:
        upstream = writer in self._upstreams
        link = writer if upstream else self._peer[writer]
        if upstream and self._answered.get(link, True):
            self.round_trips += 1
        self._answered[link] = not upstream

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FreezableProxy:
        return await self.start()

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server = await asyncio.open_connection(*self._target)
        except OSError:
            client.close()
            return
        self._writers.update((client, server))
        self._upstreams.add(server)
        self._peer[client] = server
        for reader, writer in ((client_reader, server), (server_reader, client)):
            pump = asyncio.create_task(self._pump(reader, writer))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                await self._flowing.wait()  # frozen: hold the bytes, keep the socket
                if writer in self._doomed:  # cut: the bytes go nowhere, both sides close
                    break
                self._count(writer)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One side hung up: hang up the other (a closed socket is not a frozen one).
            self._writers.discard(writer)
            self._upstreams.discard(writer)
            self._doomed.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()
