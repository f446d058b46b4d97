"""Fabric automation: the ToR's whole config (interfaces, firewall, LLDP), cabling checked
against LLDP, and switch changes planned, guarded, deployed and rolled back.

Pure cores (:mod:`.interfaces`, :mod:`.firewall`, :mod:`.lldp`, :mod:`.frrconf`,
:mod:`.guard`) beside thin adapters that run the real tools (:mod:`.tools`), and the
orchestration the command line drives (:mod:`.deploy`, :mod:`.ci`).
"""
