"""The one answer to "which address is calling": every throttle, lock-out and audit record asks here.

`X-Forwarded-For` is a list that anyone can start: a client sends `X-Forwarded-For: 1.2.3.4` and each proxy on the
way appends the address it received the connection from. Only the entries our own proxies appended can be
believed, so we walk the list from the right, past the proxies we trust, and take the first address that is not
one of them. Two settings say which proxies are ours (see docs/security.md for the ingress):

- `TRUSTED_PROXY_NETWORKS`: the networks our load balancers and ingress controllers connect from (CIDRs). The
  socket peer (`REMOTE_ADDR`) must be in one of them before `X-Forwarded-For` is read at all, and every hop inside
  them is skipped.
- `TRUSTED_PROXY_HOPS`: how many proxies append to the header in front of the application (0: ignore the header).

With neither set (the default), the header is ignored and the socket peer is the client. A forged header therefore
never chooses the caller's throttle bucket nor the address written into the audit log.
"""

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(raw: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in raw if item.strip())


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _valid(address: str) -> str | None:
    address = address.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(address.split("%")[0]))
    except ValueError:
        return None


def client_address_from(*, peer: str | None, forwarded_for: str | None) -> str | None:
    """The client's address, given the socket peer and the `X-Forwarded-For` header (if any)."""
    peer = _valid(peer or "")
    hops = int(getattr(settings, "TRUSTED_PROXY_HOPS", 0) or 0)
    networks = _networks(tuple(getattr(settings, "TRUSTED_PROXY_NETWORKS", ()) or ()))
    if peer is None or not forwarded_for or (hops <= 0 and not networks):
        return peer
    if networks and not _trusted(peer, networks):
        return peer  # the connection does not come from our proxy: whatever the header says was written by the caller
    chain = [item.strip() for item in forwarded_for.split(",") if item.strip()]
    # Walk right to left: each trusted hop appended the address it saw to the list, so an entry is believed only
    # while the hop that would have appended it is ours (within the networks, and within the count of hops).
    candidate, skipped = peer, 0
    while chain and (hops <= 0 or skipped < hops):
        if networks and not _trusted(candidate, networks):
            break
        entry = _valid(chain.pop())
        if entry is None:
            break  # garbage: stop at the last address a trusted hop vouched for
        candidate, skipped = entry, skipped + 1
    return candidate


def client_address(request) -> str | None:
    """The calling client's address for a Django request (None without a request)."""
    if request is None:
        return None
    meta = request.META
    return client_address_from(peer=meta.get("REMOTE_ADDR"), forwarded_for=meta.get("HTTP_X_FORWARDED_FOR"))


def client_address_asgi(scope) -> str | None:
    """The same for a raw ASGI scope (the gateway)."""
    client = scope.get("client") or (None, None)
    forwarded = None
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            forwarded = value.decode("latin-1") if forwarded is None else f"{forwarded},{value.decode('latin-1')}"
    return client_address_from(peer=client[0], forwarded_for=forwarded)
