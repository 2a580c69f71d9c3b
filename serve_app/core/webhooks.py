"""Signed job-completion webhooks (no Ray): signatures, the callback URL guard, retry timing, one POST.

- :func:`sign` / :func:`verify`: Stripe's scheme, ``Serve-App-Signature: t=<unix time>,v1=<hex HMAC-SHA256>``
  over ``f"{t}.".encode() + body``; :func:`verify` also refuses stale or future timestamps (replays).
- :func:`check_callback_url`: the SSRF guard run when a job is submitted; by default only public
  addresses are reachable, ``webhook_allowed_networks`` opens CIDRs, ``webhook_allowed_hosts`` narrows hosts.
- :class:`Delivery` / :func:`next_attempt`: a pending POST and its exponential backoff (no randomness).
- :func:`post`: one delivery attempt; any failure raises :class:`DeliveryFailed`.

The URL guard resolves the host when called; the HTTP client resolves it again when it connects, so a
host whose DNS answer changes in between (DNS rebinding) is only caught if the caller checks again.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

from serve_app.core.errors import InvalidInput

SIGNATURE_HEADER = "Serve-App-Signature"
# The signing secret of webhooks when API keys are off (with keys, each key's own ``webhook_secret``).
SECRET_ENV = "SERVE_APP_WEBHOOK_SECRET"
JOB_HEADER = "Serve-App-Job"
ATTEMPT_HEADER = "Serve-App-Delivery-Attempt"
USER_AGENT = "serve_app-webhook"
MAX_URL_LENGTH = 2048

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
# Whitespace, control characters and backslashes: parsers disagree on them, so they are never allowed.
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


# signatures


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The ``Serve-App-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    if not secret:
        raise ValueError("the webhook secret is empty")
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify(secret: str, body: bytes, header: str, *, now: float, tolerance_s: float = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``; never raises.

    Several ``v1=`` entries may be given (any may match, as in a secret rotation); unknown keys are ignored.
    """
    try:
        if not secret or not isinstance(header, str):
            return False
        timestamp: int | None = None
        signatures: list[str] = []
        for item in header.split(","):
            key, sep, value = item.strip().partition("=")
            if not sep:
                return False
            if key == "t":
                if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                    return False
                timestamp = int(value)
            elif key == "v1":
                if not _HEX_SHA256.fullmatch(value):
                    return False
                signatures.append(value)
        if timestamp is None or not signatures or abs(now - timestamp) > tolerance_s:
            return False
        expected = _digest(secret, body, timestamp)
        # Compare with every candidate (no early exit), so timing does not tell which one matched.
        matches = [hmac.compare_digest(expected, candidate) for candidate in signatures]
        return any(matches)
    except Exception:
        return False


# callback URLs


def check_networks(cidrs: Sequence[str]) -> list[IPNetwork]:
    """Parse ``webhook_allowed_networks``; ``ValueError`` names the first bad entry."""
    if isinstance(cidrs, str):
        raise ValueError("webhook_allowed_networks must be a list of CIDRs, not one string")
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        if not isinstance(cidr, str):
            raise ValueError(f"webhook_allowed_networks: {cidr!r} is not a CIDR string such as '10.0.0.0/8'")
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=True))
        except ValueError as e:
            raise ValueError(
                f"webhook_allowed_networks: {cidr!r} is not a CIDR network such as '10.0.0.0/8' ({e})"
            ) from e
    return networks


def resolve_host(host: str, port: int) -> list[str]:
    """The IP addresses ``host`` resolves to (``getaddrinfo``, blocking); empty when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _host_allowed(host: str, allowed_hosts: Sequence[str]) -> bool:
    for entry in allowed_hosts:
        entry = entry.strip().lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def _why_refused(address: IPAddress) -> str | None:
    """Why an address is not reachable by default (None: it is globally routable)."""
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata endpoints live there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a globally routable address"
    return None


def _check_address(raw: str, host: str, networks: Sequence[IPNetwork], *, literal: bool) -> None:
    try:
        address = ipaddress.ip_address(raw)
    except ValueError as e:
        raise InvalidInput(f"callback_url host {host!r} resolves to {raw!r}, not an IP address") from e
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        address = ipaddress.IPv6Address(raw.split("%", 1)[0])
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            candidates = [address.ipv4_mapped]  # ::ffff:a.b.c.d is judged as the IPv4 address it is
        elif address.sixtofour is not None:
            candidates.append(address.sixtofour)  # 2002::/16 embeds an IPv4 address: both must pass
        elif address in _NAT64:
            candidates.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if any(candidate in network for candidate in candidates for network in networks):
        return
    for candidate in candidates:
        reason = _why_refused(candidate)
        if reason is not None:
            if str(candidate) == host:
                via = ""
            elif literal:
                via = f" (inside {host})"
            else:
                via = f" (resolved from {host!r})"
            raise InvalidInput(
                f"callback_url refused: {candidate}{via} is {reason}; "
                "allow it with webhook_allowed_networks (a CIDR such as "
                f"'{candidate}/{candidate.max_prefixlen}')"
            )


def check_callback_url(
    url: str,
    *,
    allowed_hosts: Sequence[str] | None,
    allowed_networks: Sequence[str],
    resolve: Callable[[str, int], list[str]] = resolve_host,
) -> str:
    """Refuse (``InvalidInput``) a callback URL that could reach internal services; return it normalised.

    http(s) only, a host and no ``user:pass@``; the host must match ``allowed_hosts`` when given
    (``*.example.com`` matches subdomains, not ``example.com``); every address it resolves to must be
    globally routable unless it lies in one of ``allowed_networks``. ``resolve`` blocks (DNS).
    """
    if not isinstance(url, str) or not url:
        raise InvalidInput("callback_url must be a non-empty http(s) URL string")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"callback_url is {len(url)} characters long; the limit is {MAX_URL_LENGTH}")
    if _UNSAFE_URL_CHARS.search(url):
        raise InvalidInput(
            "callback_url contains whitespace, control characters or a backslash; URL-encode them"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidInput(f"callback_url is not a valid URL: {e}") from e
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidInput(f"callback_url scheme {parts.scheme or '(none)'!r} is refused; use http or https")
    if "@" in parts.netloc:
        raise InvalidInput("callback_url must not carry credentials (user:password@); sign requests instead")
    raw_host = (parts.hostname or "").rstrip(".")
    if not raw_host:
        raise InvalidInput("callback_url has no host; give an absolute URL such as https://example.com/hook")
    try:
        host = raw_host.encode("idna").decode("ascii").lower()
    except UnicodeError as e:
        raise InvalidInput(f"callback_url host {raw_host!r} is not a valid host name") from e
    if port == 0:
        raise InvalidInput("callback_url port 0 is refused; give a real port or none")

    if allowed_hosts is not None and not _host_allowed(host, allowed_hosts):
        raise InvalidInput(
            f"callback_url host {host!r} is not allowed; allowed hosts (webhook_allowed_hosts): "
            + (", ".join(allowed_hosts) if allowed_hosts else "none")
        )

    networks = check_networks(allowed_networks)
    default_port = 443 if scheme == "https" else 80
    try:
        addresses = [str(ipaddress.ip_address(host))]
        literal = True
    except ValueError:
        addresses = resolve(host, port or default_port)
        literal = False
    if not addresses:
        raise InvalidInput(f"callback_url host {host!r} does not resolve; check the name")
    for address in addresses:
        _check_address(address, host, networks, literal=literal)

    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != default_port:
        netloc += f":{port}"
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{path}{query}"


# retries


class Delivery(BaseModel):
    """One webhook to deliver: the JSON ``body`` for ``url``, and how its attempts went so far."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    url: str
    owner: str | None
    body: str
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str | None = None


def backoff_s(attempts: int, *, base_s: float = 1.0, max_delay_s: float = 300.0) -> float:
    """The wait after failed attempt ``attempts + 1``: ``base_s * 2**attempts``, at most ``max_delay_s``."""
    return min(max_delay_s, base_s * 2.0 ** min(max(attempts, 0), 64))


def next_attempt(
    delivery: Delivery,
    *,
    error: str,
    now: datetime,
    give_up_after_s: float,
    base_s: float = 1.0,
    max_delay_s: float = 300.0,
) -> Delivery | None:
    """The delivery after a failed attempt, due after the backoff; None once that is past the give-up time."""
    due = now + timedelta(seconds=backoff_s(delivery.attempts, base_s=base_s, max_delay_s=max_delay_s))
    if due > delivery.created_at + timedelta(seconds=give_up_after_s):
        return None
    return delivery.model_copy(
        update={"attempts": delivery.attempts + 1, "last_error": error, "next_attempt_at": due}
    )


# delivery


class DeliveryFailed(Exception):
    """One delivery attempt failed (a non-2xx answer or a transport error); the message says how."""


async def post(
    client: httpx.AsyncClient, delivery: Delivery, *, secret: str, now: float, timeout_s: float
) -> None:
    """POST ``delivery.body`` signed with ``secret``; raise :class:`DeliveryFailed` unless the answer is 2xx.

    Redirects are not followed (a 3xx fails) and the answer's body is never read.
    """
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, timestamp=int(now)),
        JOB_HEADER: delivery.job_id,
        ATTEMPT_HEADER: str(delivery.attempts + 1),
        "User-Agent": USER_AGENT,
    }
    try:
        async with client.stream(
            "POST", delivery.url, content=body, headers=headers, timeout=timeout_s, follow_redirects=False
        ) as response:
            status = response.status_code
            reason = response.reason_phrase
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        raise DeliveryFailed(f"{type(e).__name__}: {e}") from e
    if not 200 <= status < 300:
        words = [f"HTTP {status}", reason, "(redirects are not followed)" if 300 <= status < 400 else ""]
        raise DeliveryFailed(" ".join(word for word in words if word))
