"""The source host guard: which resolved addresses a source may connect to, in each mode.

Addresses are given as literals (the system resolver returns them as they are) and loopback also
through the name ``localhost``, so the checks run on real resolution without any network.
"""

from __future__ import annotations

import ipaddress

import pytest

from servicetsunami.errors import InvalidInput, PermissionDenied
from servicetsunami.security.ssrf import check_source_host

BOTH_MODES = pytest.mark.parametrize("multi_tenant", [False, True], ids=["single-user", "multi-tenant"])

METADATA = ["169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192", "::ffff:169.254.169.254"]
LINK_LOCAL = ["169.254.1.1", "fe80::1"]
NEVER = ["0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "ff02::1", "240.0.0.1", "255.255.255.255"]
INTERNAL = ["10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fd12:3456::1", "::ffff:10.1.2.3"]
EVERY_NETWORK = ["0.0.0.0/0", "::/0"]


@BOTH_MODES
@pytest.mark.parametrize("address", METADATA)
def test_cloud_metadata_addresses_are_refused_even_when_allow_listed(address: str, multi_tenant: bool) -> None:
    with pytest.raises(PermissionDenied) as info:
        check_source_host(address, 80, multi_tenant=multi_tenant, allowed_networks=EVERY_NETWORK)
    assert info.value.code == "permission_denied"
    assert info.value.details["address"] == str(_plain(address))


@BOTH_MODES
@pytest.mark.parametrize("address", LINK_LOCAL)
def test_link_local_addresses_are_refused_even_when_allow_listed(address: str, multi_tenant: bool) -> None:
    with pytest.raises(PermissionDenied):
        check_source_host(address, 5432, multi_tenant=multi_tenant, allowed_networks=["169.254.0.0/16", "fe80::/10"])


@BOTH_MODES
@pytest.mark.parametrize("address", NEVER)
def test_unspecified_multicast_and_reserved_addresses_are_always_refused(address: str, multi_tenant: bool) -> None:
    with pytest.raises(PermissionDenied):
        check_source_host(address, 5432, multi_tenant=multi_tenant, allowed_networks=EVERY_NETWORK)


def test_metadata_behind_the_nat64_prefix_is_refused() -> None:
    with pytest.raises(PermissionDenied):
        check_source_host("64:ff9b::a9fe:a9fe", 80, multi_tenant=False, allowed_networks=())


def test_localhost_is_allowed_in_single_user_mode_and_its_addresses_are_returned() -> None:
    addresses = check_source_host("localhost", 5432, multi_tenant=False, allowed_networks=())
    assert addresses
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)


def test_localhost_is_refused_in_multi_tenant_mode_with_the_setting_to_change() -> None:
    with pytest.raises(PermissionDenied) as info:
        check_source_host("localhost", 5432, multi_tenant=True, allowed_networks=())
    assert "TSUNAMI_SOURCE_ALLOWED_NETWORKS" in info.value.message


def test_localhost_is_allowed_in_multi_tenant_mode_when_allow_listed() -> None:
    addresses = check_source_host("localhost", 5432, multi_tenant=True, allowed_networks=["127.0.0.0/8", "::1/128"])
    assert all(ipaddress.ip_address(a).is_loopback for a in addresses)


@pytest.mark.parametrize("address", INTERNAL)
def test_private_cgnat_and_unique_local_addresses_are_allowed_in_single_user_mode(address: str) -> None:
    assert check_source_host(address, 5432, multi_tenant=False, allowed_networks=()) == [address]


@pytest.mark.parametrize("address", INTERNAL)
def test_private_cgnat_and_unique_local_addresses_are_refused_in_multi_tenant_mode(address: str) -> None:
    with pytest.raises(PermissionDenied):
        check_source_host(address, 5432, multi_tenant=True, allowed_networks=["192.0.2.0/24"])


@pytest.mark.parametrize("address", INTERNAL)
def test_an_allowed_network_admits_its_private_addresses_in_multi_tenant_mode(address: str) -> None:
    networks = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fd12:3456::/32"]
    assert check_source_host(address, 5432, multi_tenant=True, allowed_networks=networks) == [address]


def test_an_ipv4_mapped_address_is_judged_as_the_ipv4_address_it_carries() -> None:
    with pytest.raises(PermissionDenied):
        check_source_host("::ffff:10.1.2.3", 5432, multi_tenant=True, allowed_networks=["::ffff:0:0/96"])
    assert check_source_host("::ffff:10.1.2.3", 5432, multi_tenant=True, allowed_networks=["10.0.0.0/8"])


@BOTH_MODES
@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888"])
def test_public_addresses_are_allowed_in_both_modes(address: str, multi_tenant: bool) -> None:
    assert check_source_host(address, 443, multi_tenant=multi_tenant, allowed_networks=()) == [address]


def test_a_bracketed_ipv6_literal_is_accepted() -> None:
    assert check_source_host("[2001:4860:4860::8888]", 443, multi_tenant=True, allowed_networks=()) == [
        "2001:4860:4860::8888"
    ]


def test_a_name_that_does_not_resolve_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        check_source_host("no-such-host.invalid", 5432, multi_tenant=False, allowed_networks=())
    assert info.value.code == "invalid_input"
    assert "no-such-host.invalid" in info.value.message


@pytest.mark.parametrize(("host", "port"), [("", 5432), ("   ", 5432), ("8.8.8.8", 0), ("8.8.8.8", 65536)])
def test_an_empty_host_or_a_port_out_of_range_is_invalid_input(host: str, port: int) -> None:
    with pytest.raises(InvalidInput):
        check_source_host(host, port, multi_tenant=False, allowed_networks=())


def test_an_allowed_network_that_is_not_a_cidr_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        check_source_host("10.1.2.3", 5432, multi_tenant=True, allowed_networks=["ten-dot-something"])


def _plain(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def test_a_refused_name_does_not_reveal_what_it_resolves_to() -> None:
    with pytest.raises(PermissionDenied) as info:
        check_source_host("localhost", 5432, multi_tenant=True, allowed_networks=())
    resolved = check_source_host("localhost", 5432, multi_tenant=False, allowed_networks=())
    shown = f"{info.value.message} {info.value.details}"
    assert info.value.code == "permission_denied"
    assert not [address for address in resolved if address in shown]
    assert "127.0.0" not in shown
