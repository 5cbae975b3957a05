"""The worker's acceptor on a real listening socket and a real uvloop loop."""

from __future__ import annotations

import asyncio
import socket

import pytest

from openkms.server import balanced_accept
from openkms.server.balanced_accept import BalancedAcceptor, BalancedLoop, ConnectionShares


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


async def _round_trip(
    port: int, count: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]
    for _, writer in streams:
        writer.write(b"ping")
    for reader, _ in streams:
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    return streams


def test_an_inherited_socket_is_served_by_the_acceptor_and_counts_what_it_holds():
    listener = _listener()
    port = listener.getsockname()[1]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Echo, sock=listener)
        assert isinstance(server, BalancedAcceptor)
        streams = await _round_trip(port, 5)
        assert server.held == 5
        for _, writer in streams[:2]:
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.05)
        assert server.held == 3
        server.close()
        await server.wait_closed()
        for _, writer in streams[2:]:
            writer.close()

    with asyncio.Runner(loop_factory=BalancedLoop) as runner:
        runner.run(scenario())
    listener.close()


def test_after_close_no_connection_is_accepted():
    listener = _listener()
    port = listener.getsockname()[1]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Echo, sock=listener)
        server.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # the backlog takes it
        writer.write(b"ping")
        with pytest.raises(TimeoutError):  # unanswered: nobody accepted it
            await asyncio.wait_for(reader.read(4), 0.3)
        writer.close()

    with asyncio.Runner(loop_factory=BalancedLoop) as runner:
        runner.run(scenario())
    listener.close()


def test_siblings_sharing_a_socket_take_new_connections_in_turn():
    listener = _listener()
    port = listener.getsockname()[1]
    shares = ConnectionShares.create(2)
    mine, sibling = ConnectionShares.open(shares.path), ConnectionShares.open(shares.path)
    mine.claim()
    sibling.claim()

    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()
        acceptors = [
            BalancedAcceptor(loop, _Echo, listener, None, mine),
            BalancedAcceptor(loop, _Echo, listener.dup(), None, sibling),
        ]
        streams = []
        for _ in range(10):  # one at a time, each answered before the next
            streams += await _round_trip(port, 1)
        held = [acceptor.held for acceptor in acceptors]
        assert mine.fewest_elsewhere() == 5  # what the sibling published
        for _, writer in streams:
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.05)
        assert [acceptor.held for acceptor in acceptors] == [0, 0]
        assert mine.fewest_elsewhere() == 0  # published as its connections closed
        for acceptor in acceptors:
            acceptor.close()
        return held

    with asyncio.Runner(loop_factory=BalancedLoop) as runner:
        assert runner.run(scenario()) == [5, 5]
    listener.close()
    mine.close()
    sibling.close()
    shares.remove()
    assert not shares.path.parent.exists()


def test_a_sibling_that_never_takes_its_turn_does_not_hold_connections_back():
    listener = _listener()
    port = listener.getsockname()[1]
    shares = ConnectionShares.create(2)
    mine, absent = ConnectionShares.open(shares.path), ConnectionShares.open(shares.path)
    mine.claim()
    absent.claim()
    absent.publish(0)  # it holds nothing and never accepts

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        acceptor = BalancedAcceptor(loop, _Echo, listener, None, mine)
        started = loop.time()
        streams = await _round_trip(port, 6)
        took = loop.time() - started
        assert took < 6 * (balanced_accept.MAX_DEFER_SECONDS + 0.05)
        held = acceptor.held
        acceptor.close()
        for _, writer in streams:
            writer.close()
        return held

    with asyncio.Runner(loop_factory=BalancedLoop) as runner:
        assert runner.run(scenario()) == 6
    listener.close()
    mine.close()
    absent.close()
    shares.remove()


def test_a_worker_takes_the_slot_of_one_that_is_gone():
    shares = ConnectionShares.create(1)
    gone = 2**22 + 1  # above any pid this machine hands out (pid_max is at most 2**22)
    with open(shares.path, "r+b") as file:
        file.write(gone.to_bytes(4, "little") + (7).to_bytes(4, "little"))
    worker = ConnectionShares.open(shares.path)
    worker.claim()
    worker.publish(3)
    other = ConnectionShares.open(shares.path)
    other.claim()  # no slot left: it runs without a sibling's view
    assert other.fewest_elsewhere() == 3
    assert worker.fewest_elsewhere() is None
    for each in (worker, other):
        each.close()
    shares.remove()


def test_a_server_on_a_host_and_port_is_uvloops_own():
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Echo, "127.0.0.1", 0)
        assert not isinstance(server, BalancedAcceptor)
        server.close()
        await server.wait_closed()

    with asyncio.Runner(loop_factory=BalancedLoop) as runner:
        runner.run(scenario())


_OUT_OF_DESCRIPTORS = """
import asyncio, logging, os, resource, socket, sys
from openkms.server.balanced_accept import BalancedLoop
logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)

async def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, sock=listener)
    client = socket.create_connection(listener.getsockname())
    client.sendall(b"ping")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        while True:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    await asyncio.sleep(0.5)  # accept fails on every retry meanwhile
    for fd in fillers:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    client.settimeout(5)
    echoed = await loop.run_in_executor(None, client.recv, 4)  # once descriptors are back
    print("answered" if echoed == b"ping" else repr(echoed))
    server.close()

with asyncio.Runner(loop_factory=BalancedLoop) as runner:
    runner.run(main())
"""


def test_running_out_of_descriptors_pauses_accepting_and_logs_once():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _OUT_OF_DESCRIPTORS], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "answered"
    warnings = [line for line in done.stderr.splitlines() if "cannot accept connections" in line]
    assert len(warnings) == 1, done.stderr
    assert "Too many open files" in warnings[0]
