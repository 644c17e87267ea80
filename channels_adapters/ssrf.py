"""Refuse outbound requests to addresses inside our own network (server-side request forgery).

Chat webhook URLs and web push endpoints come from users, so an adapter that POSTs to them
could be aimed at ``http://169.254.169.254/`` (cloud metadata), ``http://127.0.0.1:6379/`` or
an intranet host. Two tools, for two kinds of client:

- ``guarded_connections(policy=...)``: for the duration of a ``with`` block, in this context
  only, every TCP connection urllib3 opens (so every ``requests`` call, which is how Apprise's
  plugins talk HTTP) resolves its host, refuses it unless *every* address passes the policy,
  and connects to exactly the address it checked: a DNS answer that changes between a check
  and the connection (DNS rebinding) cannot slip through, because there is no second lookup.
  Inside the block ``requests`` never follows a redirect either: a 3xx with a ``Location`` is
  recorded as a refusal and returned to the caller as the final response. The guard records
  the first refusal on the object the block yields, because libraries in between (Apprise)
  catch exceptions and report only "failed"; the caller raises it.
- ``assert_public_url(url)``: a check before the request, for clients we cannot guard at the
  socket (``pywebpush`` is given its own session with redirects off instead). It resolves the
  host itself, so the client's own lookup may see another answer: prefer the guard.

``AddressPolicy`` says which addresses are allowed: globally routable unicast ones
(``is_public_address``), plus, only when an adapter's ``allow_private`` OPTION asks for it, the
private and loopback networks (``True``) or just the networks it lists (``["10.2.0.0/16"]``).
Link-local, multicast, unspecified and reserved addresses and the cloud metadata endpoints
(``METADATA_ADDRESSES``) are refused whatever the option says.

Limits: the guard sees urllib3 connections only (not ``http.client`` or ``urllib`` used
directly, and not UDP); callers that use it must know their library goes through urllib3.
Behind an HTTP(S) proxy (``HTTPS_PROXY``) the connection urllib3 opens is to the proxy, so the
proxy's address is what is checked, and the proxy must enforce the rule for the destination.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests.sessions
import urllib3.util.connection
from django.utils.translation import gettext as _
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from .errors import ChannelConfigurationError, PermanentChannelError, TransientChannelError

ALLOWED_SCHEMES = frozenset({"http", "https"})

# NAT64 (RFC 6052) embeds an IPv4 address in the low 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Instance metadata and host agents of the big clouds: they hand out credentials, so they are
#: refused even to a deployment that allows private networks (AWS/GCP/Azure/OpenStack use
#: 169.254.169.254, link-local anyway; AWS also fd00:ec2::254, Alibaba 100.100.100.200, Azure's
#: wire server 168.63.129.16 looks public).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)

#: What ``allow_private=True`` adds: private, shared (carrier-grade NAT) and loopback unicast.
PRIVATE_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "fc00::/7", "::1/128")
)


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


def _never_allowed(ip: IPAddress) -> bool:
    # ::1 lies in ::/8, which ipaddress counts as reserved; loopback is for allow_private to decide.
    reserved = ip.is_reserved and not ip.is_loopback
    return ip in METADATA_ADDRESSES or ip.is_link_local or ip.is_multicast or ip.is_unspecified or reserved


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses an outbound request may connect to.

    Invariant: an address passes only if it is public, or lies in one of ``private_networks``;
    an address ``_never_allowed`` (metadata, link-local, multicast, unspecified, reserved)
    never passes. An IPv6 address that embeds an IPv4 one (``::ffff:10.0.0.1``, NAT64, ...)
    is judged by the IPv4 address it leads to.
    """

    private_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_option(cls, allow_private: Any, *, alias: str = "") -> AddressPolicy:
        """The policy an adapter's ``allow_private`` OPTION asks for: ``False`` (public only),
        ``True`` (``PRIVATE_NETWORKS`` too) or a list of networks (``"10.2.0.0/16"``, ``"127.0.0.1"``)."""
        if allow_private is None or allow_private is False:
            return cls()
        if allow_private is True:
            return cls(PRIVATE_NETWORKS)
        if isinstance(allow_private, str) or not isinstance(allow_private, Iterable):
            raise ChannelConfigurationError(
                f"{alias!r}: allow_private must be true, false or a list of networks, not {allow_private!r}."
            )
        try:
            return cls(tuple(ipaddress.ip_network(str(network), strict=False) for network in allow_private))
        except ValueError as error:
            raise ChannelConfigurationError(f"{alias!r}: allow_private lists an invalid network: {error}") from error

    def allows(self, ip: IPAddress) -> bool:
        if isinstance(ip, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(ip)
            if embedded is not None:
                return self.allows(embedded)
        if _never_allowed(ip):
            return False
        return is_public_address(ip) or any(ip in network for network in self.private_networks)


#: Public addresses only: the default of every adapter that takes ``allow_private``.
PUBLIC_ONLY = AddressPolicy()


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, as ``getaddrinfo`` (and so the HTTP client) sees it.

    ``getaddrinfo`` also parses the legacy forms ``2130706433`` and ``0x7f.0.0.1`` (both
    127.0.0.1), which is why the check resolves instead of parsing the host itself.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [_address_of(info[4]) for info in infos]


def _address_of(sockaddr: tuple) -> IPAddress:
    # The scope id of a link-local IPv6 address ("fe80::1%eth0") is dropped before parsing.
    return ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])


def check_host(host: str, port: int, *, policy: AddressPolicy = PUBLIC_ONLY) -> None:
    """Return if every address ``host`` resolves to passes ``policy``.

    Raises ``PermanentChannelError`` (reason ``"ssrf"``) naming the host and the refused
    address, never a URL (URLs of webhooks carry their secret in the path), or
    ``TransientChannelError`` (reason ``"dns"``) when the name does not resolve now.
    """
    try:
        addresses = resolve(host, port)
    except UnicodeError as error:
        raise PermanentChannelError(_("%(host)s is not a valid host name.") % {"host": host}, reason="ssrf") from error
    except socket.gaierror as error:
        raise TransientChannelError(
            _("Could not resolve %(host)s: %(error)s") % {"host": host, "error": error}, reason="dns"
        ) from error
    if not addresses:
        raise PermanentChannelError(_("%(host)s resolves to no address.") % {"host": host}, reason="ssrf")
    for address in addresses:
        if not policy.allows(address):
            raise address_refusal(host, address)


def address_refusal(host: str, address: IPAddress) -> PermanentChannelError:
    return PermanentChannelError(
        _("%(host)s resolves to %(address)s, an internal, local or metadata address Signalbox never sends to.")
        % {"host": host, "address": address},
        reason="ssrf",
    )


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


# --- The connection guard --------------------------------------------------------------------


class RefusedConnection(ConnectionRefusedError):
    """Raised inside urllib3 in place of a connection the guard refused: an ``OSError``, so
    every HTTP client in between treats it as an ordinary failed connection."""


@dataclass
class ConnectionGuard:
    """One guarded block: its policy, and the first refusal it made (``None`` if none)."""

    policy: AddressPolicy
    refusal: PermanentChannelError | None = None

    def refuse(self, error: PermanentChannelError) -> RefusedConnection:
        if self.refusal is None:
            self.refusal = error
        return RefusedConnection(error.message)


_active_guard: ContextVar[ConnectionGuard | None] = ContextVar("signalbox_connection_guard", default=None)
_install_lock = threading.Lock()
_originals: dict[str, Any] = {}


@contextmanager
def guarded_connections(*, policy: AddressPolicy = PUBLIC_ONLY) -> Iterator[ConnectionGuard]:
    """Guard every urllib3 connection and refuse every ``requests`` redirect made in this
    context (this thread, and threads started with a copy of its context) until the block ends.

    After the block, ``guard.refusal`` is the first refusal, or ``None``. Connections made by
    other threads and outside the block are not affected.
    """
    _install_hooks()
    guard = ConnectionGuard(policy)
    token = _active_guard.set(guard)
    try:
        yield guard
    finally:
        _active_guard.reset(token)


def _install_hooks() -> None:
    """Wrap urllib3's ``create_connection`` and requests' ``get_redirect_target`` once per
    process; outside a guarded block both wrappers only call the original."""
    # Always under the lock: a thread must not enter its block before both wrappers are in place.
    with _install_lock:
        if _originals:
            return
        _originals["get_redirect_target"] = requests.sessions.SessionRedirectMixin.get_redirect_target
        _originals["create_connection"] = urllib3.util.connection.create_connection
        # urllib3.connection calls ``connection.create_connection`` through the module, so
        # replacing the module attribute covers HTTP and HTTPS connections (TLS still checks
        # the certificate against the host name: only the socket's address is pinned).
        requests.sessions.SessionRedirectMixin.get_redirect_target = _guarded_redirect_target
        urllib3.util.connection.create_connection = _guarded_create_connection


def _guarded_create_connection(address, *args, **kwargs):
    guard = _active_guard.get()
    if guard is None:
        return _originals["create_connection"](address, *args, **kwargs)
    return _connect_checked(guard, address, *args, **kwargs)


def _connect_checked(
    guard: ConnectionGuard, address: tuple[str, int], timeout=_DEFAULT_TIMEOUT, source_address=None, socket_options=None
) -> socket.socket:
    """urllib3's ``create_connection``, with one lookup whose every address must pass the
    policy, then a connection to exactly those addresses (never a second lookup)."""
    host, port = address
    host = host.strip("[]")
    infos = socket.getaddrinfo(host, port, urllib3.util.connection.allowed_gai_family(), socket.SOCK_STREAM)
    for info in infos:
        ip = _address_of(info[4])
        if not guard.policy.allows(ip):
            raise guard.refuse(address_refusal(host, ip))
    error: OSError | None = None
    for family, socktype, proto, _canonname, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as caught:
            error = caught
            sock.close()
    raise error or OSError(f"getaddrinfo returned no address for {host!r}")


def _guarded_redirect_target(self, resp):
    target = _originals["get_redirect_target"](self, resp)
    guard = _active_guard.get()
    if guard is None or target is None:
        return target
    host = urlsplit(resp.url or "").hostname or ""
    guard.refuse(
        PermanentChannelError(
            _(
                "%(host)s answered with a redirect (HTTP %(status)s). Signalbox does not follow redirects from "
                "chat webhooks: use the final address."
            )
            % {"host": host, "status": resp.status_code},
            reason="ssrf",
        ),
    )
    # No target: requests treats the 3xx as the final response, so it is never followed.
    return None
