"""Where sources may connect: the guard against server-side request forgery.

A tenant names a host for its source (a PostgreSQL server, a REST API). The server then opens a
connection from *inside* its own network, so a careless or hostile host name could reach the cloud
metadata service (instance credentials), the server's own loopback services, or another customer's
private network. :func:`check_source_host` resolves the name and vets **every** address it resolves
to; the name itself is never trusted (``metadata.example.com`` may point anywhere). The caller then
connects to one of the returned addresses (e.g. libpq ``hostaddr``), so a second, different DNS
answer cannot slip past the check.

Rules, per resolved address (IPv4-mapped IPv6 such as ``::ffff:10.0.0.1`` and NAT64
``64:ff9b::/96`` addresses are judged as the IPv4 address they carry):

=====================================================  =============================================
always refused                                         cloud metadata (169.254.169.254, fd00:ec2::254,
                                                       100.100.100.200, 192.0.0.192), link-local
                                                       (169.254.0.0/16, fe80::/10), unspecified
                                                       (0.0.0.0/8, ::), multicast, reserved
single-user mode: allowed; multi-tenant: only inside   loopback, private (RFC 1918), CGNAT
``source_allowed_networks``                            (100.64.0.0/10), unique local (fc00::/7), and
                                                       every other non-public range
allowed                                                public addresses
=====================================================  =============================================

If any address of a name is refused, the name is refused: a DNS answer mixing a public and a private
address is exactly what a rebinding attack looks like. A refusal names the address only when the
caller wrote it; what a name resolves to stays in the server log, so that the guard cannot be used
to map the server's internal DNS.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Sequence
from typing import Any

from servicetsunami.errors import InvalidInput, PermissionDenied

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ULA = ipaddress.ip_network("fc00::/7")
_SETTING = "TSUNAMI_SOURCE_ALLOWED_NETWORKS"


def check_source_host(
    host: str,
    port: int,
    *,
    multi_tenant: bool,
    allowed_networks: Sequence[str] = (),
    who: str = "sources",
    setting: str = _SETTING,
) -> list[str]:
    """Resolve ``host`` and return its addresses if a source may connect to all of them.

    ``who`` and ``setting`` name, in refusals, what is connecting (``webhooks``) and the setting
    that allows private networks for it.

    Raises :class:`~servicetsunami.errors.InvalidInput` for an empty host, a bad port or a name that
    does not resolve, and :class:`~servicetsunami.errors.PermissionDenied` (saying which address and
    why, and what to change) for an address the rules above refuse. The addresses come back in the
    resolver's order, without duplicates, exactly as resolved.
    """
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name:
        raise InvalidInput("host must not be empty")
    if not 1 <= port <= 65535:
        raise InvalidInput(f"port {port} is out of range (1-65535)")
    networks = _parse_networks(allowed_networks)
    addresses = _resolve(name, port)
    for address in addresses:
        _check_address(name, address, multi_tenant=multi_tenant, networks=networks, who=who, setting=setting)
    return addresses


def _resolve(name: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else "invalid name"
        raise InvalidInput(
            f"host {name!r} does not resolve ({reason}); check the spelling, and that the name is "
            "visible from the server's network, not only from your machine"
        ) from exc
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise InvalidInput(f"host {name!r} does not resolve to any address")
    return addresses


def _check_address(
    name: str, raw: str, *, multi_tenant: bool, networks: list[IPNetwork], who: str = "sources", setting: str = _SETTING
) -> None:
    ip = _normalise(ipaddress.ip_address(raw))
    literal = raw in (name, name.partition("%")[0])
    shown = raw if literal else name
    details: dict[str, Any] = {"address": str(ip)} if literal else {}
    never = _never_allowed(ip)
    if never is not None:
        _log_refusal(name, ip, literal)
        raise PermissionDenied(
            f"{who} may not connect to {shown}: it is {never}; use the address of the database or API itself"
            if literal
            else f"{who} may not connect to {shown}: it resolves to {never}; use the address of the "
            "database or API itself",
            **details,
        )
    if ip.is_global:
        return
    if not multi_tenant or any(ip.version == net.version and ip in net for net in networks):
        return
    _log_refusal(name, ip, literal)
    what = f"it is {_internal_kind(ip)}" if literal else f"it resolves to {_internal_kind(ip)}"
    example = f" (e.g. {_suggested_network(ip)})" if literal else ""
    raise PermissionDenied(
        f"{who} may not connect to {shown}: {what}, and this multi-tenant server only reaches public "
        f"addresses and the networks its operator allows; ask the operator to add the {who[:-1]}'s network"
        f"{example} to {setting}, or use a public address",
        **details,
    )


def _log_refusal(name: str, ip: IPAddress, literal: bool) -> None:
    if not literal:  # the operator may see what the name resolved to; the caller may not
        logger.info("refused source host %s: it resolves to %s", name, ip)


def _normalise(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.scope_id:
            return ipaddress.IPv6Address(str(ip).partition("%")[0])
    return ip


def _never_allowed(ip: IPAddress) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata service address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _THIS_NETWORK):
        return "an unspecified ('this host') address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:  # includes 240.0.0.0/4 and the broadcast address
        return "a reserved address"
    return None


def _internal_kind(ip: IPAddress) -> str:
    if ip.is_loopback:
        return "a loopback address (the server itself)"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT (100.64.0.0/10) address"
    if isinstance(ip, ipaddress.IPv6Address) and ip in _ULA:
        return "a unique local (private IPv6) address"
    if ip.is_private:
        return "a private address"
    return "not a public address"


def _suggested_network(ip: IPAddress) -> str:
    if ip.is_loopback:
        return str(ipaddress.ip_network(ip))
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _parse_networks(cidrs: Sequence[str]) -> list[IPNetwork]:
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise InvalidInput(f"{_SETTING} holds {cidr!r}, which is not a network like 10.20.0.0/16") from None
    return networks
