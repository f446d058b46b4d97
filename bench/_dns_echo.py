"""The echo responder: the least a Python UDP DNS responder can do (echo the query back as a
response with a fixed answer), run beside Razor in the DNS benchmark at the same rate, so a
reader can tell the machine's noise from Razor's own tail latency.

Usage: python -m bench._dns_echo PORT
"""

from __future__ import annotations

import socket
import sys

ANSWER = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04\xc6\x33\x64\x01"


def main() -> None:
    port = int(sys.argv[1])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    recvfrom, sendto = s.recvfrom, s.sendto
    header = b"\x84\x00\x00\x01\x00\x01\x00\x00\x00\x00"
    while True:
        data, peer = recvfrom(4096)
        if len(data) > 12:
            sendto(data[:2] + header + data[12:] + ANSWER, peer)


if __name__ == "__main__":
    main()
