#!/usr/bin/python3
"""WebSocket peer for vmlift's client tests, built on python3-websockets (an
independent RFC 6455 implementation). Serves wss:// and ws:// on 127.0.0.1,
plus a raw TCP port that answers the upgrade with a wrong Sec-WebSocket-Accept.

    ws_test_server.py STATE_DIR     writes STATE_DIR/ports: "WSS WS BAD" and
                                    STATE_DIR/fingerprint (SHA-256 of the cert)
Paths: /echo, /fragments, /ping, /close, /big, /badutf8, /refuse.
The server accepts messages up to 1 MiB (larger ones: close 1009).
"""
import asyncio
import hashlib
import http
import os
import socket
import ssl
import subprocess
import sys
import threading

import websockets
from websockets.frames import OP_TEXT

STATE = sys.argv[1]


async def handler(ws, path=None):
    path = path or ws.path
    if path == "/fragments":
        await ws.send(["Hel", "lo ", "w\u00f6rld"])
    elif path == "/ping":
        waiter = await ws.ping(b"are-you-there")
        await asyncio.wait_for(waiter, 5)
        await ws.send("pong-received")
    elif path == "/close":
        await ws.close(4001, "bye")
        return
    elif path == "/big":
        await ws.send("x" * (2 * 1024 * 1024))
    elif path == "/badutf8":
        await ws.write_frame(True, OP_TEXT, b"ok \xff\xfe")
    async for message in ws:
        await ws.send(message)


async def refuse(path, headers):
    if path == "/refuse":
        return http.HTTPStatus.FORBIDDEN, [("Content-Type", "text/plain")], b"no\n"
    return None


def bad_accept_server(sock):
    while True:
        conn, _ = sock.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: bm90LXRoZS1yaWdodC1vbmU=\r\n\r\n")
        conn.close()


async def main():
    cert, key = os.path.join(STATE, "cert.pem"), os.path.join(STATE, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=ws-test", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    fp = hashlib.sha256(der).hexdigest().upper()
    with open(os.path.join(STATE, "fingerprint"), "w") as f:
        f.write(":".join(fp[i:i + 2] for i in range(0, len(fp), 2)) + "\n")
    wss = await websockets.serve(handler, "127.0.0.1", 0, ssl=ctx, max_size=1 << 20,
                                 process_request=refuse)
    ws = await websockets.serve(handler, "127.0.0.1", 0, max_size=1 << 20, process_request=refuse)
    bad = socket.socket()
    bad.bind(("127.0.0.1", 0))
    bad.listen(8)
    threading.Thread(target=bad_accept_server, args=(bad,), daemon=True).start()
    ports = "%d %d %d\n" % (wss.sockets[0].getsockname()[1], ws.sockets[0].getsockname()[1],
                            bad.getsockname()[1])
    with open(os.path.join(STATE, "ports.tmp"), "w") as f:
        f.write(ports)
    os.rename(os.path.join(STATE, "ports.tmp"), os.path.join(STATE, "ports"))
    await asyncio.Future()


asyncio.run(main())
