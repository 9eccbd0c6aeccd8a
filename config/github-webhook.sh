#!/usr/bin/env bash
# Add responder's webhook to the ML platform repository (needs the GitHub CLI, `gh auth login`
# with admin rights on the repository, and RESPONDER_GITHUB_WEBHOOK_SECRET set to the secret the
# receiver is given):
#   config/github-webhook.sh acme/ml-platform https://responder.example.internal/webhooks/github
# Events: workflow_run (a followed run settles at once), issue_comment (/approve, /reject on an
# incident ticket), pull_request and pull_request_review (change requests). See docs/integrations.md.
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 OWNER/REPO URL" >&2
  exit 2
fi
if [[ -z "${RESPONDER_GITHUB_WEBHOOK_SECRET:-}" ]]; then
  echo "$0: set RESPONDER_GITHUB_WEBHOOK_SECRET to the secret the receiver is given" >&2
  exit 2
fi
gh api "repos/$1/hooks" -f name=web -F active=true \
  -f 'events[]=workflow_run' -f 'events[]=issue_comment' \
  -f 'events[]=pull_request' -f 'events[]=pull_request_review' \
  -f "config[url]=$2" -f config[content_type]=json -f "config[secret]=$RESPONDER_GITHUB_WEBHOOK_SECRET"
