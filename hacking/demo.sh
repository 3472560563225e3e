#!/usr/bin/env bash
# `make demo`: the KB Q259906 case end to end against the lab: gate fails, remediation, gate passes.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=hacking/demo-steps.sh
. hacking/demo-steps.sh
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_NOCOLOR=1 ANSIBLE_DEPRECATION_WARNINGS=False
out="$PWD/tests/output/demo"
state="$out/lab"
mkdir -p "$out"
started=$SECONDS

kms_state() {
    exchlab show --state "$state" kms-new | python3 -c '
import json, sys
host = json.load(sys.stdin)["hosts"]["kms-new"]
kms = host["services"]["MSExchangeKMS"]["state"]
database = host["kms_database"]
print("  MSExchangeKMS on kms-new:", kms, "| KM database intact:", database["intact"],
      "stamp", database["stamp_build"], "| backups:", len(host["backups"]))'
}

echo "== 1. Start the lab: the KB Q259906 pair (tests/lab/fleets/q259906.yml)"
exchlab down --state "$state" >/dev/null
exchlab up --fleet tests/lab/fleets/q259906.yml --state "$state" --fresh || exit 1
trap 'exchlab down --state "$state"' EXIT
kms_state

echo
echo "== 2. The gate: ansible-playbook exchops.kms.check_kms_move (expected to fail)"
demo_gate "$state" "$out" before "2 = a pair does not match"

echo "== 3. The remediation: ansible-playbook exchops.kms.remediate_kms_move"
if ! ansible-playbook exchops.kms.remediate_kms_move -i "$state/inventory.yml" >"$out/remediate.log" 2>&1; then
    tail -30 "$out/remediate.log"; echo "remediation failed (log: $out/remediate.log)"; exit 1
fi
grep -E "KM database backed up|PLAY RECAP|kms-new +:" "$out/remediate.log" | sed 's/^/  /'
kms_state

echo
echo "== 4. The gate again (expected to pass)"
demo_gate "$state" "$out" after "0 = every pair matches"
code=$?

demo_before_after "$out"
echo "== Done in $((SECONDS - started)) s; logs and reports in $out"
exit $code
