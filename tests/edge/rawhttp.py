"""Send raw request bytes (argv[2], Python escapes) to [::1]:argv[1]; print the status line."""

import socket
import sys

data = sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
s = socket.create_connection(("::1", int(sys.argv[1])), timeout=5)
s.sendall(data)
reply = b""
try:
    while b"\r\n" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
except TimeoutError:
    pass
print(reply.split(b"\r\n", 1)[0].decode("latin-1"))
