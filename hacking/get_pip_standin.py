# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test fetches get-pip-<version>.py from the internet to seed pip into each sanity venv,
even with --local. Where that host is unreachable, this file is installed into ansible-test's
cache in its place (see hacking/setup.sh). It seeds pip with the interpreter's own ensurepip,
then lets that pip install what ansible-test asked for (e.g. pip==24.2).
"""

from __future__ import annotations

import subprocess
import sys

# ensurepip runs in a child process: in-process it sets PIP_CONFIG_FILE=/dev/null, so the machine's
# pip settings (index, certificates) would be lost for the install below.
subprocess.run(
    [sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL
)

# get-pip knows these flags; pip install does not.
arguments = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
if arguments:
    sys.exit(
        subprocess.run([sys.executable, "-m", "pip", "install", *arguments], check=False).returncode
    )
