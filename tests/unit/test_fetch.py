"""The page reader's address rules (app/tools/fetch.py): which addresses a page may come
from, what the resolver hands aiohttp, and what is refused before any connection."""

from __future__ import annotations

import socket
from ipaddress import ip_address, ip_network

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from app.tools.base import ToolError
from app.tools.fetch import AddressPolicy, BlockedAddress, PageFetcher, SafeResolver, is_public

REFUSED = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",  # the cloud metadata service
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_private_local_and_special_addresses_are_refused(address: str) -> None:
    assert not is_public(ip_address(address))
    assert not AddressPolicy().permits(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressPolicy().permits(ip_address(address))


def test_the_test_setting_allows_only_the_networks_it_names() -> None:
    policy = AddressPolicy([ip_network("127.0.0.1/32")])
    assert policy.permits(ip_address("127.0.0.1"))
    assert policy.permits(ip_address("::ffff:127.0.0.1"))
    assert not policy.permits(ip_address("127.0.0.2"))
    assert not policy.permits(ip_address("10.0.0.1"))
    assert not policy.permits(ip_address("::1"))


class FixedResolver(AbstractResolver):
    """Answers every name with the same addresses."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_the_resolver_drops_private_addresses_of_a_name() -> None:
    resolver = SafeResolver(AddressPolicy(), FixedResolver("10.0.0.7", "93.184.216.34", "::1"))
    results = await resolver.resolve("example.com", 80)
    assert [r["host"] for r in results] == ["93.184.216.34"]


async def test_a_name_with_only_private_addresses_does_not_resolve() -> None:
    resolver = SafeResolver(AddressPolicy(), FixedResolver("127.0.0.1", "fe80::1%1"))
    with pytest.raises(BlockedAddress):
        await resolver.resolve("rebind.example", 80)


@pytest.mark.parametrize(
    ("link", "why"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.com/file", "only http and https"),
        ("gopher://127.0.0.1:6379/_INFO", "only http and https"),
        ("http://127.0.0.1:8080/admin", "private or local"),
        ("http://[::1]/", "private or local"),
        ("http://[::ffff:127.0.0.1]/", "private or local"),
        ("http://169.254.169.254/latest/meta-data/", "private or local"),
        ("http://user:secret@example.com/", "user name or password"),
    ],
)
def test_links_refused_before_any_connection(link: str, why: str) -> None:
    fetcher = PageFetcher(max_bytes=1024, timeout=1, policy=AddressPolicy())
    with pytest.raises(ToolError, match=why):
        fetcher.check(URL(link))


@pytest.mark.parametrize("link", ["http://2130706433/", "http://127.1/", "http://0x7f.0.0.1/"])
async def test_old_numeric_forms_of_local_addresses_are_not_fetched(link: str) -> None:
    """Forms the system would read as 127.0.0.1 but that are no address to ip_address()."""
    fetcher = PageFetcher(max_bytes=1024, timeout=2, policy=AddressPolicy())
    try:
        with pytest.raises(ToolError):
            await fetcher.fetch(link)
    finally:
        await fetcher.close()
