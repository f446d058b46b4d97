"""Upgrade to a websocket through the edge at [::1]:argv[1] for Host argv[2]; echo argv[3].

Prints the status line, then what came back after the upgrade.
"""

import socket
import sys

s = socket.create_connection(("::1", int(sys.argv[1])), timeout=5)
s.sendall(
    f"GET /ws HTTP/1.1\r\nHost: {sys.argv[2]}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
)
head = b""
while b"\r\n\r\n" not in head:
    chunk = s.recv(4096)
    if not chunk:
        break
    head += chunk
head, _, rest = head.partition(b"\r\n\r\n")
print(head.split(b"\r\n", 1)[0].decode())
payload = sys.argv[3].encode()
s.sendall(payload)
while len(rest) < len(payload):
    chunk = s.recv(4096)
    if not chunk:
        break
    rest += chunk
print(rest.decode())
