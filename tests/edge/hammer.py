"""Requests through the edge for argv[2] seconds, cycling Hosts; prints status counts as JSON.

argv: port, seconds, host... . Every tenth request is a health check on [::1]:8081; its
answers are counted apart, under ``health``.
"""

import http.client
import json
import sys
import time
from collections import Counter

port, seconds, hosts = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
codes: Counter[str] = Counter()
health: Counter[str] = Counter()
conn = http.client.HTTPConnection("::1", port, timeout=5)
probe = http.client.HTTPConnection("::1", 8081, timeout=5)
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    try:
        conn.request("GET", "/", headers={"Host": hosts[i % len(hosts)]})
        r = conn.getresponse()
        r.read()
        codes[str(r.status)] += 1
    except (OSError, http.client.HTTPException) as e:
        codes[type(e).__name__] += 1
        conn.close()
    if i % 10 == 0:
        try:
            probe.request("GET", "/healthz")
            r = probe.getresponse()
            r.read()
            health[str(r.status)] += 1
        except (OSError, http.client.HTTPException) as e:
            health[type(e).__name__] += 1
            probe.close()
    i += 1
print(json.dumps({"codes": codes, "health": health}))
