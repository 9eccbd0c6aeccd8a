"""Narrow clients for the external systems playbook steps act on.

Steps depend on the protocols in ``gateway`` and ``tracker``; the real clients and the
dry-run recorders in ``dryrun`` both satisfy them.
"""
