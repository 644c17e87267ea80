"""A local fake of Apple's push service (HTTP/2 over TLS, token-based auth), for the APNs
adapter's tests, driven by aioapns.

It serves ``POST /3/device/<token>`` on 127.0.0.1 with a self-signed certificate for that
address (``ca_file`` for the client to trust), checks the ``authorization: bearer <JWT>``
(ES256, signed with the provider key whose public half it holds, ``kid`` and ``iss`` matching)
and answers per device token as APNs does (status, and a JSON ``reason`` on errors)::

    server.unregistered.add(token)  # 410 Unregistered (the app was uninstalled)
    server.bad_tokens.add(token)    # 400 BadDeviceToken
    server.throttled.add(token)     # 429 TooManyRequests
    server.unavailable.add(token)   # 503 ServiceUnavailable
    server.slow.add(token)          # received, then no answer (a read timeout)
    server.dropped.add(token)       # received, then the connection is closed
    FakeApnsServer(latency=0.01)    # every answer comes 10 ms after the request
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ApnsRequest:
    token: str
    topic: str
    apns_id: str
    payload: dict
    outcome: str
    peer: tuple


def _self_signed(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-apns")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


class FakeApnsServer:
    def __init__(self, *, key_id: str = "ABC123DEFG", team_id: str = "TEAM123456", slow_seconds: float = 2.0,
                 latency: float = 0.0) -> None:
        self.latency = latency
        self.provider_key = ec.generate_private_key(ec.SECP256R1())
        self.key_id, self.team_id = key_id, team_id
        self.slow_seconds = slow_seconds
        self._dir = tempfile.TemporaryDirectory()
        self.ca_file, key_file = _self_signed(Path(self._dir.name))
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(self.ca_file, key_file)
        self.context.set_alpn_protocols(["h2"])
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.unregistered: set[str] = set()
        self.bad_tokens: set[str] = set()
        self.throttled: set[str] = set()
        self.unavailable: set[str] = set()
        self.slow: set[str] = set()
        self.dropped: set[str] = set()
        self.requests: list[ApnsRequest] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def provider_key_pem(self) -> str:
        return self.provider_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()).decode()

    @property
    def messages(self) -> list[ApnsRequest]:
        return [r for r in self.requests if r.outcome == "accepted"]

    def start(self) -> None:
        thread = threading.Thread(target=self._accept, name="fake-apns", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()
        self._dir.cleanup()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                raw, peer = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(raw, peer), daemon=True).start()

    def _outcome(self, token: str, authorization: str) -> str:
        try:
            header = jwt.get_unverified_header(authorization.removeprefix("bearer "))
            claims = jwt.decode(authorization.removeprefix("bearer "), self.provider_key.public_key(),
                                algorithms=["ES256"])
            if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
                return "bad_auth"
        except jwt.PyJWTError:
            return "bad_auth"
        for name, tokens in (("unregistered", self.unregistered), ("bad_token", self.bad_tokens),
                             ("throttled", self.throttled), ("unavailable", self.unavailable), ("slow", self.slow),
                             ("dropped", self.dropped)):
            if token in tokens:
                return name
        return "accepted"

    def _serve(self, raw: socket.socket, peer: tuple) -> None:
        try:
            conn_sock = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        conn_sock.sendall(conn.data_to_send())
        streams: dict[int, dict] = {}
        try:
            while not self.stopping.is_set():
                data = conn_sock.recv(65535)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = {"headers": {k.decode() if isinstance(k, bytes) else k:
                                                                v.decode() if isinstance(v, bytes) else v
                                                                for k, v in event.headers}, "body": b""}
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id]["body"] += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        if not self._answer(conn, conn_sock, event.stream_id, streams.pop(event.stream_id), peer):
                            return
                conn_sock.sendall(conn.data_to_send())
        except (OSError, ssl.SSLError):
            return
        finally:
            conn_sock.close()

    def _answer(self, conn, conn_sock, stream_id: int, stream: dict, peer: tuple) -> bool:
        if self.latency:
            time.sleep(self.latency)
        headers = stream["headers"]
        token = headers.get(":path", "").removeprefix("/3/device/")
        outcome = self._outcome(token, headers.get("authorization", ""))
        with self.lock:
            self.requests.append(ApnsRequest(token=token, topic=headers.get("apns-topic", ""),
                                             apns_id=headers.get("apns-id", ""),
                                             payload=json.loads(stream["body"] or b"{}"), outcome=outcome, peer=peer))
        if outcome == "slow":
            self.stopping.wait(self.slow_seconds)
            return False
        if outcome == "dropped":
            return False
        statuses = {"accepted": (200, ""), "unregistered": (410, "Unregistered"), "bad_token": (400, "BadDeviceToken"),
                    "throttled": (429, "TooManyRequests"), "unavailable": (503, "ServiceUnavailable"),
                    "bad_auth": (403, "InvalidProviderToken")}
        status, reason = statuses[outcome]
        response = [(":status", str(status)), ("apns-id", headers.get("apns-id", ""))]
        if not reason:
            conn.send_headers(stream_id, response, end_stream=True)
            return True
        body = json.dumps({"reason": reason, **({"timestamp": int(time.time() * 1000)} if status == 410 else {})})
        conn.send_headers(stream_id, [*response, ("content-type", "application/json")])
        conn.send_data(stream_id, body.encode(), end_stream=True)
        return True
