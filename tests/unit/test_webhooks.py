"""Pure logic of serve_app.core.webhooks: signatures, the callback URL guard, backoff, and one real POST."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from serve_app.core import webhooks as wh
from serve_app.core.errors import InvalidInput
from tests.webhook_receiver import WebhookReceiver

SECRET = "whsec_test"
BODY = b'{"job_id":"abc","status":"succeeded"}'
NOW = 1_700_000_000


# sign / verify


def test_sign_is_stripes_scheme() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert wh.sign(SECRET, BODY, timestamp=NOW) == f"t={NOW},v1={expected}"


def test_sign_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="empty"):
        wh.sign("", BODY, timestamp=NOW)


def test_verify_round_trip() -> None:
    header = wh.sign(SECRET, BODY, timestamp=NOW)
    assert wh.verify(SECRET, BODY, header, now=NOW)
    assert wh.verify(SECRET, BODY, header, now=NOW + 299.5)
    assert wh.verify(SECRET, BODY, header, now=NOW - 299.5)


def test_verify_accepts_any_of_several_signatures_and_ignores_unknown_keys() -> None:
    good = wh.sign(SECRET, BODY, timestamp=NOW).split(",")[1]
    other = "v1=" + "0" * 64
    assert wh.verify(SECRET, BODY, f"t={NOW},{other},{good},v0=whatever", now=NOW)
    assert not wh.verify(SECRET, BODY, f"t={NOW},{other}", now=NOW)


def test_verify_rejects_a_tampered_body() -> None:
    header = wh.sign(SECRET, BODY, timestamp=NOW)
    assert not wh.verify(SECRET, BODY + b" ", header, now=NOW)
    assert not wh.verify(SECRET, BODY.replace(b"succeeded", b"failed"), header, now=NOW)


def test_verify_rejects_a_wrong_secret() -> None:
    header = wh.sign(SECRET, BODY, timestamp=NOW)
    assert not wh.verify("whsec_other", BODY, header, now=NOW)
    assert not wh.verify("", BODY, header, now=NOW)


def test_verify_rejects_a_changed_timestamp() -> None:
    signature = wh.sign(SECRET, BODY, timestamp=NOW).split(",")[1]
    assert not wh.verify(SECRET, BODY, f"t={NOW + 1},{signature}", now=NOW)


@pytest.mark.parametrize("offset", [301, -301, 10_000, -10_000])
def test_verify_rejects_stale_and_future_timestamps(offset: int) -> None:
    header = wh.sign(SECRET, BODY, timestamp=NOW)
    assert not wh.verify(SECRET, BODY, header, now=NOW + offset)


def test_verify_tolerance_is_configurable() -> None:
    header = wh.sign(SECRET, BODY, timestamp=NOW)
    assert not wh.verify(SECRET, BODY, header, now=NOW + 10, tolerance_s=5)
    assert wh.verify(SECRET, BODY, header, now=NOW + 1000, tolerance_s=3600)


def _good_sig() -> str:
    return wh.sign(SECRET, BODY, timestamp=NOW).split(",")[1]


@pytest.mark.parametrize(
    "header",
    [
        "",
        ",",
        "garbage",
        f"t={NOW}",
        "v1=" + "a" * 64,
        f"t=,{_good_sig()}",
        f"t=abc,{_good_sig()}",
        f"t=-{NOW},{_good_sig()}",
        f"t=+{NOW},{_good_sig()}",
        f"t=1e9,{_good_sig()}",
        f"t={NOW},t={NOW},{_good_sig()}",
        f"t={NOW},v1=",
        f"t={NOW},v1=xyz",
        f"t={NOW},{_good_sig().upper()}",
        f"t={NOW},{_good_sig()}00",
        f"t={NOW};{_good_sig()}",
        f"t={NOW},{_good_sig()},junk",
        f"t={'9' * 40},{_good_sig()}",
        "t=\udcff,v1=\udcff",
    ],
)
def test_verify_rejects_malformed_headers_without_raising(header: str) -> None:
    assert wh.verify(SECRET, BODY, header, now=NOW) is False


def test_verify_never_raises_on_odd_inputs() -> None:
    header = wh.sign(SECRET, BODY, timestamp=NOW)
    bad_header: Any = None
    assert wh.verify(SECRET, BODY, bad_header, now=NOW) is False
    assert wh.verify("\udcff", BODY, header, now=NOW) is False


# callback URLs


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    """A fake DNS: ``table[host]``, and a record of what was asked."""

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return table.get(host, [])

    asked: list[tuple[str, int]] = []
    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


PUBLIC = resolver({"example.com": ["93.184.215.14"], "sub.example.com": ["93.184.215.15"]})


def check(
    url: str,
    *,
    allowed_hosts: list[str] | None = None,
    allowed_networks: list[str] | None = None,
    resolve: Callable[[str, int], list[str]] = PUBLIC,
) -> str:
    return wh.check_callback_url(
        url, allowed_hosts=allowed_hosts, allowed_networks=allowed_networks or [], resolve=resolve
    )


def test_a_public_https_url_is_accepted_and_normalised() -> None:
    assert check("HTTPS://Example.COM/hook?x=1#frag") == "https://example.com/hook?x=1"
    assert check("http://example.com") == "http://example.com/"
    assert check("https://example.com:443/a") == "https://example.com/a"
    assert check("https://example.com:8443/a") == "https://example.com:8443/a"
    assert check("http://93.184.215.14:8080/x") == "http://93.184.215.14:8080/x"
    assert check("http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x") == (
        "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x"
    )


def test_the_resolver_is_asked_with_the_port() -> None:
    resolve = resolver({"example.com": ["93.184.215.14"]})
    check("https://example.com/", resolve=resolve)
    check("http://example.com:8080/", resolve=resolve)
    check("http://example.com/", resolve=resolve)
    assert resolve.asked == [("example.com", 443), ("example.com", 8080), ("example.com", 80)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("javascript:alert(1)", "scheme"),
        ("example.com/hook", "scheme"),
        ("https://user:pass@example.com/", "credentials"),
        ("https://user@example.com/", "credentials"),
        ("https://evil.com\\@example.com/", "backslash"),
        ("https://example.com/ x", "whitespace"),
        ("https://example.com/\nx", "control"),
        ("https:///hook", "no host"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://example.com:0/", "port 0"),
        ("https://example.com/" + "a" * 2100, "limit is 2048"),
        ("", "non-empty"),
    ],
)
def test_malformed_or_unsafe_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        check(url)
    assert info.value.status == 422


def test_the_length_limit_is_2048() -> None:
    base = "https://example.com/"
    assert check(base + "a" * (2048 - len(base)))
    with pytest.raises(InvalidInput, match="2049 characters"):
        check(base + "a" * (2049 - len(base)))


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("10.0.0.5", "10.0.0.5 is a private address"),
        ("192.168.1.10", "192.168.1.10 is a private address"),
        ("172.16.3.4", "a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("127.1.2.3", "a loopback address"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not a globally routable"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "private|reserved"),
        ("[::1]", "::1 is a loopback address"),
        ("[::]", "unspecified"),
        ("[fe80::1]", "link-local"),
        ("[fc00::1]", "private"),
        ("[ff02::1]", "multicast"),
        ("[::ffff:127.0.0.1]", r"127.0.0.1 \(inside ::ffff:127.0.0.1\) is a loopback address"),
        ("[::ffff:10.0.0.5]", r"10.0.0.5 \(inside ::ffff:10.0.0.5\) is a private address"),
        ("[::ffff:169.254.169.254]", "link-local"),
        (
            "[2002:a00:5::1]",
            r"10.0.0.5 \(inside 2002:a00:5::1\) is a private address",
        ),  # 6to4 around 10.0.0.5
        ("[64:ff9b::a00:5]", "reserved|private"),  # NAT64 around 10.0.0.5
    ],
)
def test_non_public_ip_literals_are_refused_by_default(host: str, reason: str) -> None:
    resolve = resolver({})
    with pytest.raises(InvalidInput, match=reason) as info:
        check(f"http://{host}/hook", resolve=resolve)
    assert "webhook_allowed_networks" in info.value.message
    assert resolve.asked == []  # type: ignore[attr-defined]  # IP literals are never looked up


def test_an_ipv4_mapped_public_address_is_judged_as_ipv4() -> None:
    assert check("http://[::ffff:93.184.215.14]/") == "http://[::ffff:93.184.215.14]/"


def test_allowed_networks_open_loopback() -> None:
    assert check("http://127.0.0.1:8000/hook", allowed_networks=["127.0.0.1/32"]) == (
        "http://127.0.0.1:8000/hook"
    )
    # Also when written as an IPv4-mapped IPv6 address.
    assert check("http://[::ffff:127.0.0.1]/", allowed_networks=["127.0.0.1/32"])
    # The network is exact: another loopback address stays refused.
    with pytest.raises(InvalidInput, match=r"127\.0\.0\.2 is a loopback address"):
        check("http://127.0.0.2/", allowed_networks=["127.0.0.1/32"])
    with pytest.raises(InvalidInput, match="::1 is a loopback"):
        check("http://[::1]/", allowed_networks=["127.0.0.1/32"])
    assert check("http://[::1]/", allowed_networks=["127.0.0.1/32", "::1/128"]) == "http://[::1]/"


def test_allowed_networks_open_a_private_range() -> None:
    resolve = resolver({"hooks.internal": ["10.1.2.3"]})
    assert check("http://hooks.internal/x", allowed_networks=["10.0.0.0/8"], resolve=resolve)
    with pytest.raises(InvalidInput, match=r"10\.1\.2\.3"):
        check("http://hooks.internal/x", allowed_networks=["192.168.0.0/16"], resolve=resolve)


def test_a_hostname_resolving_to_a_private_address_is_refused() -> None:
    resolve = resolver({"innocent.example.net": ["10.0.0.5"]})
    with pytest.raises(
        InvalidInput, match=r"10\.0\.0\.5 \(resolved from 'innocent\.example\.net'\) is a private"
    ):
        check("https://innocent.example.net/hook", resolve=resolve)


def test_every_resolved_address_must_pass() -> None:
    resolve = resolver({"mixed.example.net": ["93.184.215.14", "2606:4700::1", "127.0.0.1"]})
    with pytest.raises(InvalidInput, match=r"127\.0\.0\.1 .*loopback"):
        check("https://mixed.example.net/", resolve=resolve)
    resolve6 = resolver({"v6.example.net": ["2606:4700::1", "fe80::1%eth0"]})
    with pytest.raises(InvalidInput, match="link-local"):
        check("https://v6.example.net/", resolve=resolve6)


def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(InvalidInput, match="does not resolve"):
        check("https://nowhere.invalid/hook", resolve=resolver({}))


def test_the_default_resolver_returns_ip_strings() -> None:
    assert "127.0.0.1" in wh.resolve_host("127.0.0.1", 80)
    assert wh.resolve_host("nowhere.invalid", 80) == []  # .invalid never resolves (RFC 2606)


def test_the_default_resolver_refuses_localhost() -> None:
    with pytest.raises(InvalidInput, match="loopback"):
        wh.check_callback_url("http://localhost:9/", allowed_hosts=None, allowed_networks=[])


def test_an_allow_list_mismatch_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"'example\.com' is not allowed.*hooks\.partner\.com"):
        check("https://example.com/", allowed_hosts=["hooks.partner.com"])
    with pytest.raises(InvalidInput, match=r"allowed hosts .*: none"):
        check("https://example.com/", allowed_hosts=[])


def test_an_allow_list_match_is_case_insensitive() -> None:
    assert check("https://EXAMPLE.com/", allowed_hosts=["Example.COM"]) == "https://example.com/"


def test_the_allow_list_does_not_bypass_the_address_check() -> None:
    resolve = resolver({"example.com": ["10.0.0.5"]})
    with pytest.raises(InvalidInput, match="private"):
        check("https://example.com/", allowed_hosts=["example.com"], resolve=resolve)


def test_a_wildcard_matches_subdomains_on_a_dot_boundary() -> None:
    resolve = resolver(
        {
            "sub.example.com": ["93.184.215.15"],
            "a.b.example.com": ["93.184.215.16"],
            "badexample.com": ["93.184.215.17"],
            "example.com": ["93.184.215.14"],
            "example.com.evil.net": ["93.184.215.18"],
        }
    )
    hosts = ["*.example.com"]
    assert check("https://sub.example.com/x", allowed_hosts=hosts, resolve=resolve)
    assert check("https://a.b.example.com/x", allowed_hosts=hosts, resolve=resolve)
    for refused in ("badexample.com", "example.com", "example.com.evil.net"):
        with pytest.raises(InvalidInput, match="not allowed"):
            check(f"https://{refused}/x", allowed_hosts=hosts, resolve=resolve)


def test_check_networks_parses_and_refuses_bad_cidrs() -> None:
    nets = wh.check_networks(["127.0.0.1/32", "10.0.0.0/8", "::1/128"])
    assert [str(n) for n in nets] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert wh.check_networks([]) == []
    for bad in (["not-a-cidr"], ["10.0.0.5/8"], ["10.0.0.0/33"]):
        with pytest.raises(ValueError, match="webhook_allowed_networks"):
            wh.check_networks(bad)
    with pytest.raises(ValueError, match="not one string"):
        wh.check_networks("10.0.0.0/8")


def test_a_bad_allowed_network_fails_the_check() -> None:
    with pytest.raises(ValueError, match="webhook_allowed_networks"):
        check("https://example.com/", allowed_networks=["nope"])


# retries

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def delivery(**changes: Any) -> wh.Delivery:
    fields: dict[str, Any] = {
        "job_id": "0123456789abcdef0123456789abcdef",
        "url": "http://127.0.0.1/hook",
        "owner": None,
        "body": BODY.decode(),
        "created_at": T0,
        "next_attempt_at": T0,
    }
    return wh.Delivery(**(fields | changes))


def test_delivery_is_frozen_and_strict() -> None:
    d = delivery()
    assert d.attempts == 0 and d.last_error is None
    with pytest.raises(ValidationError):
        d.attempts = 3
    with pytest.raises(ValidationError):
        delivery(extra_field=1)


def test_next_attempt_doubles_the_delay() -> None:
    d = delivery()
    now = T0
    delays = []
    for n in range(1, 6):
        nxt = wh.next_attempt(d, error=f"boom {n}", now=now, give_up_after_s=3600)
        assert nxt is not None
        assert nxt.attempts == n and nxt.last_error == f"boom {n}"
        delays.append((nxt.next_attempt_at - now).total_seconds())
        d, now = nxt, nxt.next_attempt_at
    assert delays == [1, 2, 4, 8, 16]
    assert d.job_id == delivery().job_id and d.created_at == T0  # the rest is unchanged


def test_next_attempt_respects_base_and_cap() -> None:
    d = delivery(attempts=3)
    nxt = wh.next_attempt(d, error="x", now=T0, give_up_after_s=10_000, base_s=0.5)
    assert nxt is not None and nxt.next_attempt_at == T0 + timedelta(seconds=4)
    capped = wh.next_attempt(delivery(attempts=20), error="x", now=T0, give_up_after_s=10_000)
    assert capped is not None and capped.next_attempt_at == T0 + timedelta(seconds=300)
    capped = wh.next_attempt(delivery(attempts=10), error="x", now=T0, give_up_after_s=10_000, max_delay_s=60)
    assert capped is not None and capped.next_attempt_at == T0 + timedelta(seconds=60)
    huge = wh.next_attempt(delivery(attempts=5000), error="x", now=T0, give_up_after_s=10_000)
    assert huge is not None and huge.next_attempt_at == T0 + timedelta(seconds=300)


def test_next_attempt_gives_up_past_the_deadline() -> None:
    d = delivery(attempts=4)  # the next delay is 16 s
    assert wh.next_attempt(d, error="x", now=T0 + timedelta(seconds=84), give_up_after_s=100) is not None
    assert wh.next_attempt(d, error="x", now=T0 + timedelta(seconds=85), give_up_after_s=100) is None
    assert wh.next_attempt(delivery(), error="x", now=T0, give_up_after_s=0) is None


def test_next_attempt_gives_up_eventually() -> None:
    d: wh.Delivery | None = delivery()
    tries = 0
    while d is not None:
        tries += 1
        d = wh.next_attempt(d, error="x", now=d.next_attempt_at, give_up_after_s=1000)
        assert tries < 100
    # Waits 1, 2, ..., 256, then 300 (the cap): due at 811 s; the next 300 s would end past 1000 s.
    assert tries == 11


# one POST against a real server


@pytest.fixture
def server() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(status=204) as receiver:
        yield receiver


def send(d: wh.Delivery, *, secret: str = SECRET, now: float = NOW, timeout_s: float = 5) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            await wh.post(client, d, secret=secret, now=now, timeout_s=timeout_s)

    asyncio.run(go())


def test_post_sends_a_signed_body(server: WebhookReceiver) -> None:
    d = delivery(url=server.url("/hook?x=1"), attempts=2)
    send(d, now=NOW + 0.9)
    [request] = server.posts
    headers = request.headers
    assert request.path == "/hook?x=1"
    assert request.body == BODY
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "serve_app-webhook"
    assert headers["serve-app-job"] == d.job_id
    assert headers["serve-app-delivery-attempt"] == "3"
    signature = headers[wh.SIGNATURE_HEADER.lower()]
    assert signature.startswith(f"t={NOW},")
    assert wh.verify(SECRET, request.body, signature, now=NOW + 5)
    assert not wh.verify("whsec_other", request.body, signature, now=NOW + 5)


def test_post_sends_non_ascii_bodies_as_utf8(server: WebhookReceiver) -> None:
    d = delivery(url=server.url("/hook"), body='{"name":"Zoë ✓"}')
    send(d)
    [request] = server.posts
    assert request.body == '{"name":"Zoë ✓"}'.encode()
    assert wh.verify(SECRET, request.body, request.headers[wh.SIGNATURE_HEADER.lower()], now=NOW)


def test_post_raises_on_a_server_error(server: WebhookReceiver) -> None:
    server.status = 500
    with pytest.raises(wh.DeliveryFailed, match="HTTP 500"):
        send(delivery(url=server.url("/hook")))
    assert len(server.posts) == 1


def test_post_does_not_follow_redirects(server: WebhookReceiver) -> None:
    server.status = 302
    with pytest.raises(wh.DeliveryFailed, match=r"HTTP 302 .*\(redirects are not followed\)"):
        send(delivery(url=server.url("/hook")))
    assert [r.path for r in server.posts] == ["/hook"]


def test_post_raises_when_the_connection_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port any more.
    with pytest.raises(wh.DeliveryFailed, match="ConnectError"):
        send(delivery(url=f"http://127.0.0.1:{port}/hook"))


def test_post_raises_on_a_timeout() -> None:
    with socket.socket() as listener:  # accepts the connection (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(wh.DeliveryFailed, match="Timeout"):
            send(delivery(url=f"http://127.0.0.1:{port}/hook"), timeout_s=0.3)
