# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each file of a lab lives inside its state directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StateLayout:
    root: Path

    @property
    def lab_file(self) -> Path:
        """The planned fleet: hosts, addresses, credentials, ports (written by `up`)."""
        return self.root / "lab.json"

    @property
    def twin_fleet(self) -> Path:
        """The fleet `exchlab twin` derived from gathered facts (start it again with `up`)."""
        return self.root / "twin-fleet.yml"

    @property
    def hosts_dir(self) -> Path:
        return self.root / "hosts"

    def host_file(self, name: str) -> Path:
        return self.hosts_dir / f"{name}.json"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yml"

    @property
    def pid_file(self) -> Path:
        return self.root / "exchlab.pid"

    @property
    def control_socket(self) -> Path:
        return self.root / "control.sock"

    @property
    def log_file(self) -> Path:
        return self.root / "exchlab.log"

    @property
    def ntlm_users(self) -> Path:
        return self.root / "ntlm_users"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"
