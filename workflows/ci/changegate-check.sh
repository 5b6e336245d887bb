#!/bin/sh
# changegate-check.sh: hold a deployment until PA05 has signed off exactly the content being
# deployed. Run it in the checked-out repository as the step right before the deployment.
#
#   exit 0  allowed: deploy (and, unless CHANGEGATE_RECORD=0, the deployment is recorded)
#   exit 1  denied: every reason is printed; do not deploy
#   exit 2  could not decide (no server, bad token, bad input, a signature that does not verify,
#           a working tree with uncommitted changes): do not deploy. Never 0.
#
# The script passes changegate's exit code through unchanged: a pipeline that stops on any
# non-zero exit stops on 1 and 2.
#
# Variables:
#   CHANGEGATE_URL         server URL, e.g. https://changegate.example.gov.vn (required)
#   CHANGEGATE_TOKEN       API token of a user with the ci role: keep it in the CI system's
#                          secret store, never in the repository (required)
#   CHANGEGATE_SYSTEM      system code as registered, e.g. TTHC-TINH (required)
#   CHANGEGATE_ENV         environment deployed to, e.g. production (required)
#   CHANGEGATE_WAIT        optional: keep asking until allowed or this much time is up (30s, 30m,
#                          2h); the server answers the moment a reviewer signs off
#   CHANGEGATE_PUBLIC_KEYS path to the server's keys (`curl $CHANGEGATE_URL/api/v1/keys`, fetched
#                          once, checked with the operator and kept with the pipeline; required):
#                          an answer that is unsigned, does not verify or is about another
#                          question exits 2 (CHANGEGATE_PUBLIC_KEY, the older name, still works)
#   CHANGEGATE_REPO        optional: the repository to judge (default: the current directory)
#   CHANGEGATE_RECORD      optional: 0 to ask without recording the deployment (default: record)
#   CHANGEGATE_BIN         optional: the changegate binary (default: changegate on PATH)
#
# The gate judges HEAD's commit and tree, so a shallow clone (depth 1) is enough for the check.
# Filing the change request with `changegate request --repo . --range origin/main..HEAD` needs
# the base of the range: clone with full history (GitHub: fetch-depth: 0, GitLab: GIT_DEPTH: 0).
set -eu

missing=""
if [ -z "${CHANGEGATE_PUBLIC_KEYS:-}" ] && [ -n "${CHANGEGATE_PUBLIC_KEY:-}" ]; then
  CHANGEGATE_PUBLIC_KEYS=$CHANGEGATE_PUBLIC_KEY
fi
for v in CHANGEGATE_URL CHANGEGATE_TOKEN CHANGEGATE_SYSTEM CHANGEGATE_ENV CHANGEGATE_PUBLIC_KEYS; do
  eval "val=\${$v:-}"
  [ -n "$val" ] || missing="$missing $v"
done
if [ -n "$missing" ]; then
  echo "changegate-check: could not decide, failing closed: not set:$missing" >&2
  exit 2
fi

bin=${CHANGEGATE_BIN:-changegate}
if ! command -v "$bin" >/dev/null 2>&1; then
  echo "changegate-check: could not decide, failing closed: cannot find the changegate binary ($bin)" >&2
  exit 2
fi
set -- check --system "$CHANGEGATE_SYSTEM" --env "$CHANGEGATE_ENV" --repo "${CHANGEGATE_REPO:-.}"
if [ -n "${CHANGEGATE_WAIT:-}" ]; then
  set -- "$@" --wait "$CHANGEGATE_WAIT"
fi
set -- "$@" --public-key "$CHANGEGATE_PUBLIC_KEYS"
if [ "${CHANGEGATE_RECORD:-1}" != 0 ]; then
  set -- "$@" --record
fi

# CHANGEGATE_URL and CHANGEGATE_TOKEN are read by changegate from the environment (the token
# never appears on a command line).
export CHANGEGATE_URL CHANGEGATE_TOKEN
exec "$bin" "$@"
