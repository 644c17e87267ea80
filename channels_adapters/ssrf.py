"""Refuse outbound requests to addresses inside our own network (server-side request forgery).

Chat webhook URLs and web push endpoints come from users, so an adapter that POSTs to them
could be aimed at ``http://169.254.169.254/`` (cloud metadata), ``http://127.0.0.1:6379/`` or
an intranet host. ``assert_public_url()`` runs before every such request.

Adapters that call it take an ``allow_private`` OPTION (default ``False``) that skips the check:
set it for an on-premises chat server on a private network, and in tests that talk to a server
on 127.0.0.1. Never set it for an alias whose URLs users can choose freely.

Limits, by design of a check-then-send guard: the HTTP client resolves the host again, so a DNS
answer that changes between the two lookups (DNS rebinding) is not caught, and neither is a
redirect followed by the client. A deployment that must rule those out routes these requests
through an egress proxy that enforces the same rule.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from .errors import PermanentChannelError, TransientChannelError

ALLOWED_SCHEMES = frozenset({"http", "https"})

# NAT64 (RFC 6052) embeds an IPv4 address in the low 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _refuse(url: str, why: str) -> PermanentChannelError:
    return PermanentChannelError(f"Refusing to contact {url!r}: {why}.", reason="ssrf")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, Teredo), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def is_public_address(ip: IPAddress) -> bool:
    """True only for a globally routable unicast address (and any IPv4 address it embeds)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public_address(embedded):
            return False
    return not (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, as ``getaddrinfo`` (and so the HTTP client) sees it.

    ``getaddrinfo`` also parses the legacy forms ``2130706433`` and ``0x7f.0.0.1`` (both
    127.0.0.1), which is why the check resolves instead of parsing the host itself.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # The scope id of a link-local IPv6 address ("fe80::1%eth0") is dropped before parsing.
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def assert_public_url(url: str) -> None:
    """Return if ``url`` is http(s) without credentials and its host resolves only to public
    addresses; else raise ``PermanentChannelError`` with reason ``"ssrf"``.

    A failed DNS lookup raises ``TransientChannelError`` (reason ``"dns"``): nothing is sent,
    and the name may resolve later.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _refuse(url, f"malformed URL ({error})") from error
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise _refuse(url, f"scheme {parts.scheme!r} is not http or https")
    if parts.username is not None or parts.password is not None:
        raise _refuse(url, "URLs with credentials are not allowed")
    host = parts.hostname
    if not host:
        raise _refuse(url, "no host")
    if port is None:
        port = 443 if parts.scheme.lower() == "https" else 80
    try:
        addresses = resolve(host, port)
    except UnicodeError as error:
        raise _refuse(url, f"host {host!r} is not a valid name") from error
    except socket.gaierror as error:
        raise TransientChannelError(f"Could not resolve {host!r}: {error}", reason="dns") from error
    if not addresses:
        raise _refuse(url, f"{host!r} resolves to no address")
    for address in addresses:
        if not is_public_address(address):
            raise _refuse(url, f"{host!r} resolves to non-public address {address}")
