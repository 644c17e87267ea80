"""The SSRF guard: only http(s) URLs whose host resolves only to public addresses pass."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels_adapters.errors import PermanentChannelError, TransientChannelError
from channels_adapters.ssrf import assert_public_url, is_public_address

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
