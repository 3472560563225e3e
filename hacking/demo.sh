#!/usr/bin/env bash
# `make demo`: start the lab, run what the collection can do against it, show the result.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_NOCOLOR=1
state="$PWD/tests/output/demo-lab"
mkdir -p tests/output

echo "== Starting the lab: the KB Q259906 pair (tests/lab/fleets/q259906.yml)"
exchlab down --state "$state" >/dev/null
exchlab up --fleet tests/lab/fleets/q259906.yml --state "$state" --fresh
trap 'exchlab down --state "$state"' EXIT

echo
echo "== The new KM Server as the lab shows it (state kept in $state)"
exchlab show --state "$state" kms-new | python3 -c '
import json, sys
host = json.load(sys.stdin)["hosts"]["kms-new"]
print("  MSExchangeKMS:", host["services"]["MSExchangeKMS"]["state"])
print("  KM database stamp:", host["kms_database"]["stamp_build"], "intact:", host["kms_database"]["intact"])
for event in host["events"]:
    print("  event", event["id"], event["source"], event["message"])
'
