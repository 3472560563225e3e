#!/usr/bin/env bash
# Create or refresh .venv with the pinned tools, and make this working tree visible to Ansible as
# the collection exchops.kms (a symlink, so edits are seen without reinstalling).
# A second run with unchanged requirement files only checks a hash and the links: a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
python=${PYTHON:-python3.11}
venv=.venv

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    echo "setup: creating $venv with $("$python" --version)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi

inputs=(requirements-dev.txt constraints.txt)
[ -f tests/lab/pyproject.toml ] && inputs+=(tests/lab/pyproject.toml)
want=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
have=$(cat "$venv/.setup-hash" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
    echo "setup: installing pinned packages into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r requirements-dev.txt -c constraints.txt
    if [ -f tests/lab/pyproject.toml ]; then
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e tests/lab
    fi
    echo "$want" > "$venv/.setup-hash"
fi

# exchops.kms from the working tree: Ansible scans ansible_collections/ on sys.path.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$site/ansible_collections/exchops"
ln -sfn "$root" "$site/ansible_collections/exchops/kms"

# ansible-test sanity seeds pip into its venvs with a downloaded script; give it the offline one.
pip_version=$("$venv/bin/python" - <<'PY'
import re, pathlib, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", source.read_text()).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
if ! cmp -s hacking/get_pip_standin.py "$cache"; then
    cp hacking/get_pip_standin.py "$cache"
fi
echo "setup: ready ($("$venv/bin/ansible" --version | head -1), exchops.kms -> $root)"
