"""sixpod: the control plane of an IPv6-only anycast hosting pod."""

__version__ = "0.1.0"
