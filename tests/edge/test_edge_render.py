"""The rendered edge files: the config loads, and Debian nginx's own ``nginx -t`` accepts it."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from sixpod.edge import tlsfiles
from sixpod.edge.config import EdgeConfig
from sixpod.edge.nginxconf import nginx_conf
from sixpod.inventory.load import load_model

GOLDEN = Path(__file__).resolve().parents[1] / "inventory" / "golden" / "small" / "nodes"
LUA = Path(__file__).resolve().parents[2] / "src" / "sixpod" / "edge" / "lua"


def test_rendered_edge_yaml_loads_and_names_the_announcer_health_address() -> None:
    text = (GOLDEN / "edge1" / "edge.yaml").read_text()
    cfg = load_model(text, "edge.yaml", EdgeConfig)
    announcer = json.loads((GOLDEN / "edge1" / "announcer.yaml").read_text().split("\n", 1)[1])
    url = next(c["url"] for c in announcer["checks"] if c["name"] == "edge")
    assert url == f"http://[{cfg.health.ip}]:{cfg.health.port}/healthz"
    assert len(cfg.listen) == 8  # every VIP, IPv4 and IPv6, port 80
    assert {e.port for e in cfg.listen} == {80}
    assert cfg.tls is not None
    assert [e.ip for e in cfg.tls.listen] == [e.ip for e in cfg.listen]
    assert {e.port for e in cfg.tls.listen} == {443}
    assert not (GOLDEN / "app1" / "edge.yaml").exists()


def test_unknown_key_is_refused() -> None:
    text = (GOLDEN / "edge1" / "edge.yaml").read_text().replace('"node"', '"nodes"')
    with pytest.raises(Exception, match="nodes"):
        load_model(text, "edge.yaml", EdgeConfig)


@pytest.mark.integration
def test_nginx_accepts_the_generated_config(tmp_path: Path) -> None:
    text = (GOLDEN / "edge1" / "edge.yaml").read_text()
    cfg = load_model(text, "edge.yaml", EdgeConfig).model_copy(
        update={
            "run_dir": str(tmp_path),
            "lua_dir": str(LUA),
            "access_log": str(tmp_path / "a.log"),
            "error_log": str(tmp_path / "e.log"),
        }
    )
    (tmp_path / "admin").mkdir()
    tlsfiles.prepare(str(tmp_path))
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf(cfg))
    # the golden file differs from this one only in its paths
    golden = (GOLDEN / "edge1" / "nginx.conf").read_text()
    assert golden.count("listen ") == conf.read_text().count("listen ")
    assert golden.count(" ssl http2") == 8
    # nginx -t binds every listener: run it in a namespace holding the node's VIPs
    ns = f"sixpod-ngt-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        for e in cfg.listen:
            plen = 32 if e.ip.version == 4 else 128
            extra = ["nodad"] if e.ip.version == 6 else []
            subprocess.run(
                ["ip", "-n", ns, "addr", "add", f"{e.ip}/{plen}", "dev", "lo", *extra], check=True
            )
        nginx = ["/usr/sbin/nginx", "-t", "-c", str(conf), "-e", str(tmp_path / "e.log")]
        r = subprocess.run(
            ["ip", "netns", "exec", ns, *nginx], capture_output=True, text=True, check=False
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert r.returncode == 0, r.stderr
    assert "test is successful" in r.stderr
