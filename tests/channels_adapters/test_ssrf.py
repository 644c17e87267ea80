"""The SSRF guards: ``assert_public_url`` (only http(s) URLs whose host resolves only to public
addresses pass), ``AddressPolicy`` (what ``allow_private`` adds and never adds) and
``guarded_connections`` (checked at connect time, no redirects) against a real local server."""

from __future__ import annotations

import ipaddress
import socket
import threading

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from channels_adapters.errors import PermanentChannelError, TransientChannelError
from channels_adapters.ssrf import PUBLIC_ONLY, AddressPolicy, assert_public_url, guarded_connections, is_public_address

REFUSED = [
    "http://127.0.0.1/",
    "http://127.1.2.3:8080/hook",
    "http://localhost/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
    "http://[::ffff:192.168.0.1]/",
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://255.255.255.255/",
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f.0.0.1/",  # hex
    "http://017700000001/",  # octal
    "http://0177.0.0.1/",
    "https://127.0.0.1/",
    "ftp://93.184.216.34/",
    "file:///etc/passwd",
    "gopher://93.184.216.34/",
    "http://user:secret@93.184.216.34/",
    "http://user@93.184.216.34/",
    "http:///nohost",
    "http://93.184.216.34:99999/",  # port out of range
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_special_and_non_http_urls_are_refused(url):
    with pytest.raises(PermanentChannelError) as caught:
        assert_public_url(url)
    assert caught.value.reason == "ssrf"


@pytest.mark.parametrize("url", ["http://93.184.216.34/", "https://93.184.216.34:8443/hook?x=1", "http://[2606:4700::1111]/"])
def test_public_literal_addresses_pass_without_network(url):
    assert_public_url(url)


def test_a_name_is_refused_if_any_of_its_addresses_is_private(monkeypatch):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        assert host == "mixed.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(PermanentChannelError, match="10.1.2.3"):
        assert_public_url("https://mixed.example/hook")


def test_a_name_with_only_public_addresses_passes(monkeypatch):
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, port, *a, **k: [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:4700::1111", port, 0, 0))]
    )
    assert_public_url("https://hooks.example/abc")


def test_a_failed_lookup_is_transient_and_sends_nothing(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(TransientChannelError) as caught:
        assert_public_url("https://hooks.example/abc")
    assert caught.value.reason == "dns"


PRIVATE_V4 = [ipaddress.IPv4Network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8")]


@given(network=st.sampled_from(PRIVATE_V4), offset=st.integers(min_value=0, max_value=2**24 - 1), form=st.sampled_from(["dotted", "decimal", "hex", "mapped"]))
def test_any_spelling_of_a_private_ipv4_address_is_refused(network, offset, form):
    ip = network[offset % network.num_addresses]
    host = {
        "dotted": str(ip),
        "decimal": str(int(ip)),
        "hex": hex(int(ip)),
        "mapped": f"[::ffff:{ip}]",
    }[form]
    with pytest.raises(PermanentChannelError):
        assert_public_url(f"http://{host}/")


@given(st.ip_addresses(v=6, network="fe80::/10") | st.ip_addresses(v=6, network="fc00::/7") | st.ip_addresses(v=4, network="192.168.0.0/16"))
def test_link_local_and_unique_local_addresses_are_not_public(ip):
    assert not is_public_address(ip)


# --- AddressPolicy: what allow_private adds, and what it never does ---------------------------

ALWAYS_REFUSED = [
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack instance metadata
    "169.254.170.2",  # ECS task metadata
    "fd00:ec2::254",  # AWS metadata over IPv6 (inside fc00::/7)
    "100.100.100.200",  # Alibaba Cloud metadata (inside 100.64.0.0/10)
    "168.63.129.16",  # Azure wire server (looks public)
    "::ffff:169.254.169.254",
    "fe80::1",
    "224.0.0.1",
    "0.0.0.0",
    "240.0.0.1",
]


@pytest.mark.parametrize("option", [False, True, ["0.0.0.0/0", "::/0"]])
@pytest.mark.parametrize("address", ALWAYS_REFUSED)
def test_metadata_link_local_and_special_addresses_are_refused_whatever_allow_private_says(option, address):
    assert not AddressPolicy.from_option(option).allows(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "100.64.0.1", "fd12::1", "::1", "::ffff:10.0.0.1"])
def test_allow_private_true_adds_private_and_loopback_networks(address):
    ip = ipaddress.ip_address(address)
    assert not PUBLIC_ONLY.allows(ip)
    assert AddressPolicy.from_option(True).allows(ip)


def test_allow_private_as_a_list_adds_only_those_networks():
    policy = AddressPolicy.from_option(["10.2.0.0/16", "127.0.0.1"])
    assert [policy.allows(ipaddress.ip_address(a)) for a in ("10.2.3.4", "10.3.0.1", "127.0.0.1", "127.0.0.2", "93.184.216.34")] == [
        True, False, True, False, True,
    ]


# --- The connection guard, with requests against a real server on 127.0.0.1 ------------------


def test_the_guard_refuses_a_connection_and_records_why(http_sink):
    with guarded_connections() as guard, pytest.raises(requests.ConnectionError):
        requests.get(http_sink.url("/secret"), timeout=5)

    assert guard.refusal is not None and guard.refusal.reason == "ssrf"
    assert "127.0.0.1" in guard.refusal.message
    assert http_sink.received == []


def test_the_guard_connects_to_the_address_it_checked(http_sink, monkeypatch):
    answers = iter(["127.0.0.1", "127.0.0.2"])  # a second lookup would get another answer

    def one_answer_each(host, port, *args, **kwargs):
        assert host == "hooks.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", one_answer_each)
    with guarded_connections(policy=AddressPolicy.from_option(["127.0.0.1"])) as guard:
        response = requests.get(f"http://hooks.example:{http_sink.port}/ok", timeout=5)

    assert (response.status_code, guard.refusal) == (200, None)
    assert [request.path for request in http_sink.received] == ["/ok"]


def test_the_guard_returns_a_redirect_without_following_it(http_sink):
    http_sink.status = 302
    http_sink.response_headers = {"Location": http_sink.url("/next")}

    with guarded_connections(policy=AddressPolicy.from_option(True)) as guard:
        response = requests.get(http_sink.url("/first"), timeout=5)

    assert response.status_code == 302
    assert guard.refusal.reason == "ssrf" and "redirect" in guard.refusal.message
    assert [request.path for request in http_sink.received] == ["/first"]


def test_the_guard_holds_only_inside_its_block_and_its_context(http_sink):
    seen_from_other_thread: list[int] = []
    with guarded_connections() as guard:
        # A thread started without a copy of this context is not guarded (nor slowed down).
        worker = threading.Thread(target=lambda: seen_from_other_thread.append(requests.get(http_sink.url("/other"), timeout=5).status_code))
        worker.start()
        worker.join(10)
    after = requests.get(http_sink.url("/after"), timeout=5)

    assert guard.refusal is None
    assert (seen_from_other_thread, after.status_code) == ([200], 200)
