"""The one way the platform calls a URL a tenant gave it (webhooks, and any other outbound URL).

A tenant's URL must not become a way into our own network (server-side request forgery). So:

- The host is resolved once, and every address it resolves to must be public (`ipaddress.is_global`, which rules
  out private, loopback, link-local (cloud metadata at 169.254.169.254), shared, reserved and unspecified ranges,
  IPv4-mapped IPv6 forms included). Production refuses anything else and plain http; `OUTBOUND_ALLOW_PRIVATE_HOSTS`
  (local runs, tests) allows private and loopback addresses explicitly.
- The request then goes to the exact address that was checked: the URL's host is replaced by that IP, the `Host`
  header (and, for https, the TLS server name and certificate check) keep the original name. No second lookup takes
  place, so a name that rebinds to 127.0.0.1 between the check and the connection reaches nothing.
- Redirects are never followed (a public host could otherwise send us to an internal one).

Apps check a URL at registration with `outbound_url_problem` (a clear message for the form) and send with
`outbound_post`, which checks again at each call.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


class OutboundRefused(Exception):
    """The URL may not be called; the message says why, in words for the tenant."""


@dataclass(frozen=True)
class CheckedUrl:
    url: str  # the original
    scheme: str
    host: str
    port: int
    address: str  # the IP the request will connect to
    path: str  # path and query


def _allow_private(allow_private: bool | None) -> bool:
    if allow_private is not None:
        return allow_private
    return bool(getattr(settings, "OUTBOUND_ALLOW_PRIVATE_HOSTS", False))


def private_allowed(setting: str) -> bool:
    """An app's own switch (`setting`, e.g. QUALITY_WEBHOOK_ALLOW_PRIVATE_HOSTS) or the platform's allows them."""
    return bool(getattr(settings, setting, False)) or _allow_private(None)


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def outbound_check(url: str, *, allow_private: bool | None = None) -> CheckedUrl:
    """Resolve the URL's host once and check every address; the result names the address to connect to."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise OutboundRefused("Use an http(s) URL with a host name.")
    if parts.username or parts.password:
        raise OutboundRefused("Do not put credentials in the URL.")
    private_ok = _allow_private(allow_private)
    if parts.scheme != "https" and not private_ok:
        raise OutboundRefused("Use https.")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise OutboundRefused("The port is not valid.") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError:
        raise OutboundRefused(f"The host {parts.hostname} does not resolve.") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise OutboundRefused(f"The host {parts.hostname} does not resolve.")
    if not private_ok and not all(address_is_public(a) for a in addresses):
        raise OutboundRefused(f"The host {parts.hostname} resolves to a non-public address.")
    path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return CheckedUrl(
        url=url, scheme=parts.scheme, host=parts.hostname, port=port, address=addresses[0].split("%")[0], path=path
    )


def outbound_url_problem(url: str, *, allow_private: bool | None = None) -> str | None:
    """Why the URL may not be registered, or None."""
    try:
        outbound_check(url, allow_private=allow_private)
    except OutboundRefused as exc:
        return str(exc)
    return None


def outbound_post(
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    timeout: float,
    allow_private: bool | None = None,
) -> httpx.Response:
    """POST to the address checked just now, never following a redirect. Raises OutboundRefused or httpx.HTTPError."""
    checked = outbound_check(url, allow_private=allow_private)
    literal = f"[{checked.address}]" if ":" in checked.address else checked.address
    default_port = checked.port == DEFAULT_PORTS[checked.scheme]
    host_header = checked.host if default_port else f"{checked.host}:{checked.port}"
    extensions = {"sni_hostname": checked.host} if checked.scheme == "https" else {}
    with httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False) as client:
        request = client.build_request(
            "POST",
            f"{checked.scheme}://{literal}:{checked.port}{checked.path}",
            content=content,
            headers={**headers, "Host": host_header},
            extensions=extensions,
        )
        return client.send(request)
