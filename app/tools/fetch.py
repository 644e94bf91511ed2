"""Fetching a web page for the model without letting it reach the owner's own network
(SSRF): only http and https, only public addresses (checked on the address the connection
goes to, so a name that resolves twice cannot swap in a private one), redirects followed
by hand and checked the same way, a time limit and a size cap."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from app.tools.base import ToolError

log = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 64 * 1024
USER_AGENT = "Mozilla/5.0 (compatible; TelegramBotAssistant; +https://github.com/)"
# IPv6 prefixes that carry an IPv4 address inside: the embedded one is what is reached.
NAT64 = IPv6Network("64:ff9b::/96")
# What a page may be: read as HTML, or as text as it is.
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset({"application/json", "application/xml", "application/rss+xml"})


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: IPAddress) -> bool:
    """Whether an address is on the public internet: not private, loopback, link-local,
    multicast, reserved or unspecified, in IPv4 or IPv6 (an IPv6 address that carries an
    IPv4 one is judged by that one too)."""
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None and not is_public(inner):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ip_network(value, strict=False) for value in values)


class AddressPolicy:
    """Which addresses pages may come from: public ones, and the private networks a test
    (or a closed network) allows."""

    def __init__(self, allowed: Sequence[IPNetwork] = ()) -> None:
        self.allowed = tuple(allowed)

    def permits(self, address: IPAddress) -> bool:
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address.version == net.version and address in net for net in self.allowed):
            return True
        return is_public(address)


class BlockedAddress(OSError):
    """A host with no address pages may come from (aiohttp reports it as a DNS error)."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} has no public address")
        self.host = host


class SafeResolver(AbstractResolver):
    """The system's resolver with the addresses the policy refuses dropped: aiohttp
    connects only to what this returns, so the check and the connection see one answer."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        kept = [r for r in results if self.policy.permits(ip_address(r["host"].split("%")[0]))]
        if not kept:
            raise BlockedAddress(host)
        return kept

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A page as it arrived: where from (after redirects), its type and its bytes."""

    url: str
    content_type: str
    charset: str | None
    body: bytes

    @property
    def is_html(self) -> bool:
        return self.content_type in HTML_TYPES

    def text(self) -> str:
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # a charset name Python does not know
            return self.body.decode("utf-8", errors="replace")


def readable_type(content_type: str) -> bool:
    return content_type.startswith("text/") or content_type in HTML_TYPES | TEXT_TYPES


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.0f} KB"


class PageFetcher:
    """Reads pages within the rules above; its own session, created on first use (aiohttp
    wants a running loop), closed at shutdown."""

    def __init__(self, *, max_bytes: int, timeout: float, policy: AddressPolicy) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None
        self._resolver: SafeResolver | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._resolver = SafeResolver(self.policy)
            connector = aiohttp.TCPConnector(resolver=self._resolver, limit=20)
            # trust_env=False: no proxy from the environment, which would connect for us
            # to an address we never checked.
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                headers={"User-Agent": USER_AGENT, "Accept": "text/html,text/*;q=0.9,*/*;q=0.1"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:  # a resolver given to a connector is not its to close
            await self._resolver.close()
            self._resolver = None

    def check(self, url: URL) -> None:
        """Refuse what must not be fetched before any connection: other schemes, user
        names in links, and addresses written into the link."""
        if url.scheme not in ("http", "https"):
            raise ToolError(f"only http and https links can be read, not {url.scheme or '?'}:.")
        if not url.host:
            raise ToolError("the link has no host.")
        if url.user or url.password:
            raise ToolError("links with a user name or password are not read.")
        try:
            literal = ip_address(url.host.split("%")[0])
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        if not self.policy.permits(literal):
            raise ToolError(f"{url.host} is a private or local address; it is not read.")

    async def fetch(self, address: str) -> FetchedPage:
        """The page at `address`, following redirects; a ToolError says why not."""
        try:
            url = URL(address.strip())
        except (ValueError, TypeError):
            raise ToolError("that is not a link.") from None
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(url)
        except TimeoutError:
            raise ToolError(f"the page did not load within {self.timeout:g} seconds.") from None

    async def _follow(self, url: URL) -> FetchedPage:
        session = self._client()
        for _ in range(MAX_REDIRECTS + 1):
            self.check(url)
            try:
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in REDIRECTS:
                        location = response.headers.get("Location")
                        if not location:
                            raise ToolError("the page redirected nowhere.")
                        try:
                            url = response.url.join(URL(location))
                        except ValueError:
                            raise ToolError("the page redirected to a broken link.") from None
                        continue
                    return await self._read(response)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, BlockedAddress):
                    raise ToolError(
                        f"{url.host} is a private or local address; it is not read."
                    ) from None
                raise ToolError(f"could not connect to {url.host}.") from None
            except aiohttp.ClientError as exc:
                log.info("Reading a page failed: %s", type(exc).__name__)
                raise ToolError(f"reading {url.host} failed ({type(exc).__name__}).") from None
        raise ToolError(f"the page redirected more than {MAX_REDIRECTS} times.")

    async def _read(self, response: aiohttp.ClientResponse) -> FetchedPage:
        if response.status >= 400:
            raise ToolError(f"the page answered HTTP {response.status}.")
        content_type = response.content_type.lower()
        if not readable_type(content_type):
            raise ToolError(f"the page is {content_type}, not text or HTML; it is not read.")
        limit = human_size(self.max_bytes)
        too_big = ToolError(f"the page is larger than {limit}; it is not read.")
        if response.content_length is not None and response.content_length > self.max_bytes:
            raise too_big
        body = bytearray()
        async for chunk in response.content.iter_chunked(CHUNK):
            body += chunk
            if len(body) > self.max_bytes:
                raise too_big
        return FetchedPage(str(response.url), content_type, response.charset, bytes(body))
