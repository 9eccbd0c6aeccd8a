"""Benchmarks of responder: intake, large groups, alert to first action, playbook throughput,
memory and scaling. Run ``python bench/run.py`` (see bench/README.md)."""
