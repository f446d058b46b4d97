"""A whole pod on one machine: network namespaces, real FRR, ExaBGP and services."""
