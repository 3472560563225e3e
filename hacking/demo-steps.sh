# shellcheck shell=bash
# Steps `make demo` (demo.sh) and `make demo-jump` (demo-jump.sh) share; sourced by both.

# demo_gate STATE OUT NAME MEANING: run the gate against the lab in STATE into OUT/NAME (its log
# OUT/gate-NAME.log), print its exit code with MEANING and its report; return that exit code.
demo_gate() {
    local state=$1 out=$2 name=$3 meaning=$4 code
    ansible-playbook exchops.kms.check_kms_move -i "$state/inventory.yml" -e "kms_report_dir=$out/$name" >"$out/gate-$name.log" 2>&1
    code=$?
    echo "  exit code $code ($meaning)"
    cat "$out/$name/report.md"
    return "$code"
}

# demo_before_after OUT: kms-new's pair in the gate's reports OUT/before and OUT/after, side by side.
demo_before_after() {
    echo "== Before / after (kms-new)"
    python3 - "$1/before/report.json" "$1/after/report.json" <<'PY'
import json, sys
before, after = (json.load(open(path))["pairs"][0] for path in sys.argv[1:3])
print(f"  {'':16} {'before':14} {'after':14}")
for key in ("status", "target_build", "kms_binary_build", "source_build"):
    print(f"  {key:16} {str(before[key]):14} {str(after[key]):14}")
PY
}
