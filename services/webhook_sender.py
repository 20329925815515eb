"""One HTTP POST of a delivery, with the standard library: no redirect is followed,
the whole exchange is bounded by the timeout, and with WEBHOOK_BLOCK_PRIVATE a
receiver on a private or loopback address is refused, at the address actually used."""
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

USER_AGENT = "inventory-webhooks/1"


class BlockedAddress(Exception):
    """The URL's host resolves to an address WEBHOOK_BLOCK_PRIVATE refuses."""


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None
    error: str | None


def checked_address(host: str, port: int, block_private: bool) -> tuple:
    """The address to connect to; with `block_private`, only when every address the
    host resolves to is a public one (a name with one private answer is refused)."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if block_private:
        for *_, sockaddr in answers:
            if not ipaddress.ip_address(sockaddr[0].split("%")[0]).is_global:
                raise BlockedAddress(f"{host} 解析为内网或回环地址 {sockaddr[0]}")
    return answers[0][4]


def post(url: str, body: bytes, headers: dict[str, str], timeout: float, block_private: bool) -> Outcome:
    """POST `body` to `url`; delivered means a 2xx within `timeout` seconds."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    started = time.monotonic()
    try:
        address = checked_address(parts.hostname, port, block_private)
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout,
                                                     context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
        # Connect to the address that was checked, not to a second lookup's answer.
        connection._create_connection = lambda _, *args: socket.create_connection(address[:2], *args)
        try:
            path = parts.path or "/"
            connection.request("POST", f"{path}?{parts.query}" if parts.query else path, body=body,
                               headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
            response = connection.getresponse()
            response.read(64 * 1024)
        finally:
            connection.close()
    except BlockedAddress as exc:
        return Outcome(False, None, str(exc))
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:255])
    if time.monotonic() - started > timeout:
        return Outcome(False, response.status, f"超时：超过 {timeout} 秒才应答")
    if 200 <= response.status < 300:
        return Outcome(True, response.status, None)
    return Outcome(False, response.status, f"HTTP {response.status}")
