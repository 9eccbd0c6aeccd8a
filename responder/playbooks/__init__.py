"""Playbooks: YAML runbooks parsed into typed models, the step registry, and the runner."""
