#!/usr/bin/env bash
# `make demo`: start the lab, run the remediation against it, show the result.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

echo "== exchops.kms: documentation of exchops.kms.exchange_facts (from this working tree)"
ANSIBLE_NOCOLOR=1 ansible-doc exchops.kms.exchange_facts | sed -n '1,25p'

if [ ! -f tests/lab/pyproject.toml ]; then
    echo
    echo "== The lab (simulated Exchange servers over WinRM) is not built yet: nothing to run against."
    exit 0
fi
