# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host state on disk: JSON round trip, atomic save, locking, and what `exchlab show` prints."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from exchlab.state import (
    HostState,
    Registry,
    StateError,
    host_lock,
    locked_host,
    normalize_path,
)
from exchlab.windows.shell import CommandResult

Run = Callable[[HostState, str], CommandResult]
Make = Callable[..., HostState]
PASSWORD = "HZGYYHACWLQACTI"


def test_save_then_load_gives_the_same_state_byte_for_byte(
    run: Run, kb: HostState, tmp_path: Path
) -> None:
    # Exercise every part of the state first: pending transition, events, files, runs.
    run(kb, rf"xcopy C:\EXCHSRVR\KMSDATA C:\KMSBACKUP /E /I /Y & sc start MSExchangeKMS {PASSWORD}")
    run(kb, r"D:\EXCH55SP3\ENG\SERVER\SETUP\I386\update.exe")
    kb.requests["commands"] = 7
    path = tmp_path / "hosts" / "KMS-NEW.json"
    kb.save(path)
    loaded = HostState.load(path)
    assert loaded.dumps() == kb.dumps()
    loaded.save(path)
    assert path.read_text(encoding="utf-8") == kb.dumps()
    assert loaded.to_show() == kb.to_show()
    for name in ("KMSERVER.EXE", "STORE.EXE"):
        entry = loaded.fs.file_entry(rf"C:\EXCHSRVR\BIN\{name}")
        assert entry is not None and entry.version and entry.version.startswith("5.5.2650")


def test_the_state_file_is_readable_json(kb: HostState, tmp_path: Path) -> None:
    path = tmp_path / "KMS-NEW.json"
    kb.save(path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    setup = raw["registry"]["HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup"]
    assert setup["ServicePackNumber"] == {"type": "REG_DWORD", "data": 3}
    assert raw["files"]["C:\\EXCHSRVR\\BIN\\KMSERVER.EXE"]["version"] == "5.5.1960.8"
    assert raw["files"]["C:\\Exchange Server Setup.log"]["text"].startswith("++++ Microsoft")
    assert raw["services"]["MSExchangeKMS"]["state"] == "STOPPED"
    assert raw["kms_database"]["stamp_build"] == "5.5.2650"
    assert path.stat().st_size < 200_000  # big files are seeds, not bytes


def test_save_is_atomic_and_leaves_no_temporary_file(
    kb: HostState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "KMS-NEW.json"
    kb.save(path)
    before = path.read_bytes()

    def broken(self: HostState) -> str:
        raise RuntimeError("disk went away")

    monkeypatch.setattr(HostState, "dumps", broken)
    with pytest.raises(RuntimeError):
        kb.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["KMS-NEW.json"]


def test_a_broken_state_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"format": 99}', encoding="utf-8")
    with pytest.raises(StateError, match="format 99"):
        HostState.load(path)
    with pytest.raises(StateError, match="cannot read host state"):
        HostState.load(tmp_path / "missing.json")


def test_a_state_saved_before_shells_peak_was_kept_loads_with_none_seen(
    kb: HostState, tmp_path: Path
) -> None:
    path = tmp_path / "KMS-NEW.json"
    raw = kb.to_json()
    raw["requests"] = {"http": 14, "shells": 2, "commands": 2}
    path.write_text(json.dumps(raw), encoding="utf-8")
    assert HostState.load(path).to_show()["requests"] == {
        "http": 14,
        "shells": 2,
        "commands": 2,
        "shells_peak": 0,
    }


def test_the_host_lock_serialises_threads(kb: HostState, tmp_path: Path) -> None:
    path = tmp_path / "KMS-NEW.json"
    kb.save(path)

    def bump() -> None:
        with locked_host(path) as host:
            count = host.requests["commands"]
            time.sleep(0.01)
            host.requests["commands"] = count + 1

    threads = [threading.Thread(target=bump) for _thread_number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert HostState.load(path).requests["commands"] == 8
    assert (tmp_path / "KMS-NEW.json.lock").exists()


def test_the_host_lock_is_released_after_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    with pytest.raises(ValueError), host_lock(path):
        raise ValueError("boom")
    with host_lock(path):
        pass


def test_show_has_the_contract_keys_and_no_secrets(make_host: Make) -> None:
    host = make_host(image_path_password=True, km_binary_build="5.5.1960.8", events=[5389])
    shown = host.to_show()
    assert set(shown) >= {
        "address",
        "exchange",
        "services",
        "kms_database",
        "backups",
        "events",
        "requests",
    }
    assert shown["address"] == "127.0.0.2"
    assert shown["requests"] == {"http": 0, "shells": 0, "commands": 0, "shells_peak": 0}
    assert shown["services"]["MSExchangeKMS"]["state"] == "stopped"
    assert (
        shown["services"]["MSExchangeKMS"]["binary_path"]
        == r"C:\Exchsrvr\Bin\Kmserver.exe ********"
    )
    assert shown["kms_database"] == {
        "intact": True,
        "stamp_build": "5.5.2650",
        "path": r"C:\EXCHSRVR\KMSDATA",
        "files": 3,
    }
    assert shown["exchange"]["release"] == "Exchange Server 5.5 SP3"
    assert shown["events"][0]["id"] == 5389
    assert PASSWORD not in json.dumps(shown)
    assert PASSWORD in host.dumps()  # the state file keeps it: KMS needs it


@pytest.mark.parametrize(
    ("path", "cwd", "expected"),
    [
        ("C:\\EXCHSRVR\\BIN\\", "C:\\", r"C:\EXCHSRVR\BIN"),
        (r"c:\exchsrvr\.\bin\..\KMSDATA", "C:\\", r"C:\exchsrvr\KMSDATA"),
        ("KMSDATA", r"C:\EXCHSRVR", r"C:\EXCHSRVR\KMSDATA"),
        (r"\Temp", r"D:\SP3", r"D:\Temp"),
        ("D:", "C:\\", "D:\\"),
        ("C:/EXCHSRVR/BIN", "C:\\", r"C:\EXCHSRVR\BIN"),
        (r"C:\KMSDATA.", "C:\\", r"C:\KMSDATA"),
        (r"C:\..\..", "C:\\", "C:\\"),
    ],
)
def test_windows_paths_normalise(path: str, cwd: str, expected: str) -> None:
    assert normalize_path(path, cwd) == expected


def test_registry_keys_and_values_are_case_insensitive() -> None:
    registry = Registry()
    registry.set_value(r"HKLM\Software\Lab\Zeta", "Value", "REG_SZ", "z")
    registry.set_value(r"hklm\software\lab\alpha", "value", "REG_DWORD", 1)
    registry.set_value(r"HKEY_LOCAL_MACHINE\SOFTWARE\LAB\ZETA", "VALUE", "REG_SZ", "new")
    assert registry.data(r"HKLM\SOFTWARE\LAB\zeta", "vAlUe") == "new"
    assert [key.name for key in registry.subkeys(r"HKLM\Software\Lab")] == ["alpha", "Zeta"]
    zeta = registry.key(r"HKLM\SOFTWARE\LAB\ZETA")
    assert zeta is not None and zeta.path == r"HKEY_LOCAL_MACHINE\Software\Lab\Zeta"
    assert [value.name for value in zeta.values.values()] == ["Value"]
    with pytest.raises(StateError, match="invalid registry key"):
        registry.set_value(r"HKXX\Software", "x", "REG_SZ", "")


def test_a_frozen_clock_moves_one_second_per_command(run: Run, kb: HostState) -> None:
    first = run(kb, "echo %TIME%").stdout
    second = run(kb, "echo %TIME%").stdout
    # %TIME% is expanded before the command starts (and moves the clock).
    assert (first, second) == ("09:12:40.00\r\n", "09:12:41.00\r\n")
