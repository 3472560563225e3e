#!/usr/bin/env bash
# `make demo-jump`: the KB Q259906 case behind a Windows jump host, end to end against the lab. The
# NT 4.0 pair only jump01 reaches: gate fails, remediation with the operator at kms-new's console
# (played by the lab), gate passes.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=hacking/demo-steps.sh
. hacking/demo-steps.sh
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_NOCOLOR=1 ANSIBLE_DEPRECATION_WARNINGS=False
out="$PWD/tests/output/demo-jump"
state="$out/lab"
update='D:\EXCH55SP3\ENG\SERVER\SETUP\I386\update.exe'
# The play writes its run record there right before it shows the console steps.
run_record='C:\exchops-sp-run.txt'
# The lab's installer ends at once: the role's waits are made for a real server.
waits='{"kms_remediate_sp_quiet_period": 3, "kms_remediate_sp_poll_interval": 1, "kms_remediate_sp_timeout": 180, "kms_remediate_watch": 2}'
mkdir -p "$out"
rm -f "$out/operator.json" "$out/operator.err"
started=$SECONDS
operator_pid=""

kms_state() {
    exchlab show --state "$state" kms-new | python3 -c '
import json, sys
host = json.load(sys.stdin)["hosts"]["kms-new"]
exchange = [name for name, service in host["services"].items() if name.startswith("MSExchange")]
running = [name for name in exchange if host["services"][name]["state"] == "running"]
database = host["kms_database"]
print("  on kms-new: MSExchangeKMS", host["services"]["MSExchangeKMS"]["state"],
      f"| Exchange services running: {len(running)} of {len(exchange)}",
      "| Kmserver.exe", host["exchange"]["kms_binary_build"])
print("  KM database intact:", database["intact"], "stamp", database["stamp_build"],
      "| backups:", len(host["backups"]), "| update.exe runs:", len(host["exchange"]["updates"]))'
}

echo "== 1. Start the lab: the KB Q259906 pair behind jump01 (tests/lab/fleets/jump_q259906.yml)"
exchlab down --state "$state" >/dev/null
exchlab up --fleet tests/lab/fleets/jump_q259906.yml --state "$state" --fresh --base-address auto || exit 1
# On the way out: the operator started below, by its pid, if it still waits; then the lab.
trap '[ -n "$operator_pid" ] && kill "$operator_pid" 2>/dev/null; exchlab down --state "$state"' EXIT
kms_state

echo
echo "== 2. The gate: ansible-playbook exchops.kms.check_kms_move (expected to fail)"
demo_gate "$state" "$out" before "2 = a pair does not match"

echo "== 3. The remediation: ansible-playbook exchops.kms.remediate_kms_move, through jump01"
exchlab console --state "$state" kms-new --run "$update" --when-file "$run_record" --wait 600 \
    >"$out/operator.json" 2>"$out/operator.err" &
operator_pid=$!
echo "  the operator at kms-new's console (exchlab console, pid $operator_pid) comes once the play's"
echo "  run record $run_record is on the server, and runs $update"
if ! ansible-playbook exchops.kms.remediate_kms_move -i "$state/inventory.yml" -e "kms_report_dir=$out/remediation" -e "$waits" >"$out/remediate.log" 2>&1; then
    tail -30 "$out/remediate.log"; echo "remediation failed (log: $out/remediate.log)"; exit 1
fi
wait "$operator_pid"
operator_code=$?
operator_pid=""
grep -E "KM database backed up" "$out/remediate.log" | sed 's/^ */  /'
# What the play showed the operator while it waited.
grep -m1 "waiting for an operator" "$out/remediate.log" | fold -s -w 96 | sed 's/^/  | /'
grep -E "PLAY RECAP|kms-new +:" "$out/remediate.log" | sed 's/^/  /'
kms_state

echo
echo "== 4. The gate again (expected to pass)"
demo_gate "$state" "$out" after "0 = every pair matches"
code=$?

demo_before_after "$out"

echo "== Who ran update.exe"
exchlab show --state "$state" >"$out/lab-after.json"
python3 - "$out/lab-after.json" "$out/operator.json" "$out/operator.err" "$operator_code" <<'PY'
import json, re, sys
hosts = json.load(open(sys.argv[1]))["hosts"]
runs = hosts["kms-new"]["exchange"]["updates"]
# A command line that runs update.exe, or has the server run something (an `at` job, wmic).
starts = re.compile(r'(?i)^("[^"]*|[^" ]*)update\.exe|process call create|^at ')
lines = hosts["jump01"]["command_lines"]
from_jump = [line for line in lines if starts.search(line)]
jump = (f"jump01 never started it (none of its {len(lines)} command lines runs update.exe, an `at`"
        " job or wmic process call create)" if not from_jump
        else f"jump01 started it {len(from_jump)} time(s): {from_jump}")
if sys.argv[4] != "0":
    print(f"  the operator at kms-new's console ran nothing: {open(sys.argv[3]).read().strip()}")
    print(f"  update.exe runs on kms-new: {len(runs)}; {jump}")
else:
    clicked = json.load(open(sys.argv[2]))
    times = ", ".join(run["time"].replace("T", " ") for run in runs)
    print(f"  update.exe ran {len(runs)} time(s), at kms-new's console (the operator, exchlab console)"
          f" at {times} by kms-new's clock, exit code {clicked['exit_code']};\n  {jump}")
PY
echo "== Done in $((SECONDS - started)) s; logs and reports in $out"
exit $code
