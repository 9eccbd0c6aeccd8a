"""Narrow clients for the external systems playbook steps act on.

Steps depend on the protocols in ``base`` (GitHubGateway, Tracker, Toggles); the real clients
(``github``, ``workflow_runs``, ``jira``, ``toggles``) and the dry-run recorders in ``dryrun``
satisfy them. ``http_policy`` is how all of them read an HTTP failure.
"""
