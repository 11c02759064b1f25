"""Loopback ports for local servers: a free one, whether one is taken, waiting for one."""

from __future__ import annotations

import socket
import time

__all__ = ["free_port", "port_in_use", "wait_for_port"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(host: str, port: int) -> bool:
    """Something accepts connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not port_in_use(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port}")
        time.sleep(0.02)
