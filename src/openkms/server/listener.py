"""The listening socket, bound before start-up claims anything: a taken port or an address
this host does not have is one clear line and a non-zero exit, not uvicorn's log after the
banner."""

from __future__ import annotations

import os
import socket


class ListenError(RuntimeError):
    """The address cannot be listened on; the message names it and the cause."""


def bind_listener(host: str, port: int, backlog: int = 2048) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ListenError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise ListenError(f"cannot listen on {host}:{port}: {reason.lower()}") from None
    # Worker processes of --workers N are spawned and inherit it.
    sock.set_inheritable(True)
    return sock
