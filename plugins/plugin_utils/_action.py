# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of exchops.kms's action plugins: one template `run()` for all of them.

`ExchopsAction.run()` owns what every action shares: the task's options checked against the
module's spec and minimums, the host the task names (the delegated one under delegate_to), check
mode, secrets masked wherever text leaves, and the translation of the helpers' errors (StepError,
WinrsError, ParseError / ProbeError) into Ansible results, with the one place that says "Nothing
was changed.". A module gives ARGUMENT_SPEC (and MINIMUMS, SECRET_OPTIONS), `_options()` (checks
beyond the spec; a ValueError refuses the task) and `_work()`. `WinrsAction` adds what a module
that speaks WinRM needs: pywinrm, the winrm connection, and reading a host's Exchange facts.
"""

# Internal to exchops.kms: not a public API; may change in any release.

from __future__ import annotations

import contextlib
import difflib
import typing as t
from dataclasses import dataclass

from ansible.errors import AnsibleActionFail
from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import DEFAULT_TYPE_VALIDATORS
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.errors import (
    ArgumentTypeError,
    ElementError,
    NoLogError,
    SubParameterTypeError,
    UnsupportedError,
)
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ._errors import TYPE_WORDS, Refusal, StepError
from ._facts import FactsError, RemoteUnreadable, read_facts
from ._probe import ProbeError, facts_probe
from ._reach import (
    JUMP_HOST_VAR,
    Reach,
    direct_reach,
    jump_host_of,
    reach_through,
    remote_failure_message,
    shell_slot,
)
from ._winout import ParseError
from ._winrs import (
    HAS_WINRM,
    MASK,
    WINRM_CONNECTIONS,
    WINRM_IMPORT_ERROR,
    WinrsConfigError,
    WinrsError,
    WinrsShell,
    inventory_host_options,
    mask,
)

display = Display()

NOTHING_CHANGED = "Nothing was changed."
# What the host said that no parser understood: the one wording, for every module.
UNEXPECTED_ANSWER = (
    "The host answered in an unexpected form; run with -vvvv to see the commands and report it."
)


@dataclass(frozen=True)
class Minimum:
    """The least value of an integer option, and what it means to the operator."""

    least: int
    unit: str = ""
    hint: str = ""

    def refusal(self, name: str, value: int, default: int | None = None) -> str | None:
        """The problem and its fix, or None when VALUE is allowed; DEFAULT, the option's own,
        is offered as an example when it is allowed."""
        if value >= self.least:
            return None
        wanted = "more than 0" if self.least == 1 else f"{self.least} or more"
        unit = f" {self.unit}" if self.unit else ""
        hint = f" ({self.hint})" if self.hint else ""
        example = (
            f", e.g. its default {default}" if default is not None and default >= self.least else ""
        )
        return (
            f"{name} is {value}; it must be {wanted}{unit}{hint}. "
            f"Set {name} to {wanted}{unit}{example}."
        )


def type_problems(
    arguments: t.Mapping[str, t.Any], argument_spec: dict[str, dict[str, t.Any]]
) -> list[str]:
    """One sentence per option whose value is not of its type (or holds an element that is
    not), in our words, since ansible-core's change between releases (2.16 says "of type
    <class 'str'>" and drops the value, 2.19 "of type str" and quotes it). A no_log option's
    value is never quoted. The checks are ansible-core's own type checkers."""
    problems = []
    for name, value in arguments.items():
        option = argument_spec.get(name)
        if option is None or value is None:
            continue  # unknown (said apart), or not set
        wanted = option.get("type", "str")
        if not isinstance(wanted, str) or wanted not in DEFAULT_TYPE_VALIDATORS:
            continue
        hidden = bool(option.get("no_log"))
        try:
            checked = DEFAULT_TYPE_VALIDATORS[wanted](value)
        except (TypeError, ValueError):
            problems.append(
                f"{name} is {_shown(value, hidden)}; it must be {TYPE_WORDS.get(wanted, wanted)}"
            )
            continue
        elements = option.get("elements")
        if wanted != "list" or elements not in DEFAULT_TYPE_VALIDATORS:
            continue
        for element in checked:
            try:
                DEFAULT_TYPE_VALIDATORS[elements](element)
            except (TypeError, ValueError):
                problems.append(
                    f"{name} holds {_shown(element, hidden)}; each of its elements must be "
                    f"{TYPE_WORDS.get(elements, elements)}"
                )
                break
    return problems


def _shown(value: t.Any, hidden: bool) -> str:
    return MASK if hidden else repr(value)


# The limits every reading module shares.
READ_MINIMUMS = {
    "kms_event_count": Minimum(0, hint="how many MSExchangeKMS events to read; 0 skips the log"),
    "timeout": Minimum(1, "seconds"),
}


@dataclass(frozen=True)
class Task:
    """What `_work()` is given: the host, the checked options, the secrets among them."""

    host: str
    arguments: dict[str, t.Any]
    secrets: tuple[str, ...]
    check_mode: bool
    diff: bool
    task_vars: dict[str, t.Any]

    def mask(self, text: str) -> str:
        return mask(text, self.secrets)

    def progress(self, message: str) -> None:
        """A step at -vv, host first, secrets masked."""
        display.vv(self.mask(f"{self.host}: {message}"), host=self.host)


class ExchopsAction(ActionBase):
    _task_vars: dict[str, t.Any]  # set by run(), for the modules that read other hosts
    TRANSFERS_FILES = False
    # The plugins open their own WinRS shells; Ansible's connection only supplies its options.
    _requires_connection = False
    #: The module's full name, for messages.
    MODULE_NAME = "exchops.kms"
    #: Mirrors DOCUMENTATION in plugins/modules/<module>.py (a unit test keeps them equal).
    ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {}
    #: The least value of integer options, checked once here for every module.
    MINIMUMS: dict[str, Minimum] = {}
    #: Options whose values are secrets: masked in every message, warning and result.
    SECRET_OPTIONS: tuple[str, ...] = ()
    #: What the module reads when the host's answer is not understood ("the Exchange facts").
    READING = "the host's answer"
    #: Said once when a task fails before it changed anything.
    NOTHING_DONE = NOTHING_CHANGED

    def run(
        self, tmp: str | None = None, task_vars: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        try:
            return self._run(tmp, task_vars)
        except AnsibleActionFail as failure:
            # ansible-core 2.16 to 2.18 put traceback.format_exc() in the failure's result when
            # it is built: the error being handled then (a helper's, whose text may hold a
            # startup password that `msg` masks), or "NoneType: None". Their default callback
            # prints its last line at any verbosity. Our failures say all in `msg`; 2.19 keeps
            # `result` apart from the traceback, so nothing is there to drop.
            failure.result.pop("exception", None)
            raise

    def _run(self, tmp: str | None, task_vars: dict[str, t.Any] | None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        self._task_vars = task_vars
        host = self._task_host(task_vars)
        arguments = self._validated_arguments(host, self.ARGUMENT_SPEC)
        secrets = tuple(str(arguments[key]) for key in self.SECRET_OPTIONS if arguments.get(key))
        task = Task(
            host, arguments, secrets, bool(self._task.check_mode), bool(self._task.diff), task_vars
        )
        self._changed = False
        try:
            try:
                options = self._options(task)
            except ValueError as exc:
                raise Refusal(str(exc)) from None
            self._ready(task)
            outcome = self._work(task, options)
        except StepError as exc:
            self._changed = self._changed or exc.changed
            raise self._failure(task, f"{host}: {exc}", exc.result) from None
        except WinrsError as exc:
            # WinRM's message names the host and its endpoint already.
            if exc.unreachable:
                return {
                    **result,
                    "unreachable": True,
                    "msg": self._said(task, str(exc)),
                    "changed": self._changed,
                }
            raise self._failure(task, str(exc)) from None
        except (ParseError, ProbeError, FactsError) as exc:
            message = f"{host}: could not read {self.READING}: {to_text(exc)}. {UNEXPECTED_ANSWER}"
            raise self._failure(task, message) from None
        return self._masked({**result, **outcome}, task.secrets)

    # -- what a module gives ------------------------------------------------------------------

    def _options(self, task: Task) -> t.Any:
        """The module's options beyond its spec, checked; a ValueError (a whole sentence, no
        host) refuses the task before anything is sent."""
        return task.arguments

    def _ready(self, task: Task) -> None:
        """What must hold before the work starts (a library, a connection); raises
        AnsibleActionFail."""

    def _work(self, task: Task, options: t.Any) -> dict[str, t.Any]:
        """Do the module's job; return the task result. Set `self._changed` as soon as the host
        is changed, so that a failure after it says so."""
        raise NotImplementedError

    # -- the edge -------------------------------------------------------------------------------

    def _said(self, task: Task, message: str) -> str:
        """The message as the user reads it: masked, and saying when nothing was changed."""
        message = message.rstrip()
        if not message.endswith((".", "?", "!")):
            message += "."
        if not self._changed:
            message = f"{message} {self.NOTHING_DONE}"
        return task.mask(message)

    def _failure(
        self, task: Task, message: str, result: dict[str, t.Any] | None = None
    ) -> AnsibleActionFail:
        details = self._masked({**(result or {}), "changed": self._changed}, task.secrets)
        return AnsibleActionFail(self._said(task, message), result=details)

    @classmethod
    def _masked(cls, value: t.Any, secrets: tuple[str, ...]) -> t.Any:
        if not secrets:
            return value
        if isinstance(value, str):
            return mask(value, secrets)
        if isinstance(value, dict):
            return {key: cls._masked(item, secrets) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [cls._masked(item, secrets) for item in value]
        return value

    def _task_host(self, task_vars: dict[str, t.Any] | None) -> str:
        """The host the task works on: the delegated one under delegate_to."""
        return self._task.delegate_to or (task_vars or {}).get("inventory_hostname", "this host")

    def _validated_arguments(
        self, host: str, argument_spec: dict[str, dict[str, t.Any]]
    ) -> dict[str, t.Any]:
        """The task's options checked and converted, or a failure that names the host, every
        option that is wrong, and the options there are.

        Replaces ActionBase.validate_argument_spec, whose failure names neither the host nor
        the module's public name and carries the task's arguments as the error's object, so
        Ansible prints them, a startup password included.
        """
        # An option given as None (YAML null, or a template's none on 2.19) is not set, on
        # every line: 2.16 to 2.18 refuse None for a string option, 2.19 takes it as ''.
        given = {name: value for name, value in self._task.args.items() if value is not None}
        validation = ArgumentSpecValidator(argument_spec).validate(given)
        errors = validation.errors.errors
        problems = []
        for name in sorted(validation.unsupported_parameters):
            # A typo of a real option is the usual cause: name it.
            close = difflib.get_close_matches(name, argument_spec, n=1)
            problems.append(
                f"unknown option {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        typed = type_problems(given, argument_spec)
        # ansible-core's sentences for the same type errors (and for what they prevented it
        # from checking: a mapping's suboptions, its no_log values) are left out; the rest are
        # its own.
        said_apart: tuple[type[Exception], ...] = (UnsupportedError,)
        if typed:
            said_apart += (ArgumentTypeError, ElementError, SubParameterTypeError, NoLogError)
        problems += typed
        problems += [error.msg for error in errors if not isinstance(error, said_apart)]
        if problems:
            raise AnsibleActionFail(
                f"{host}: {self.MODULE_NAME}: {'; '.join(problems)}. Its options are "
                f"{', '.join(sorted(argument_spec))} (ansible-doc {self.MODULE_NAME}); fix the "
                f"task and run it again. {self.NOTHING_DONE}"
            )
        arguments = validation.validated_parameters
        for name, minimum in self.MINIMUMS.items():
            default = argument_spec.get(name, {}).get("default")
            refusal = minimum.refusal(name, arguments[name], default)
            if refusal:
                raise AnsibleActionFail(f"{host}: {refusal} {self.NOTHING_DONE}")
        return arguments


class WinrsAction(ExchopsAction):
    """An action that works on its host over WinRM itself."""

    #: What the module does over WinRM, for messages: "reads the host", "controls the service".
    WINRM_PURPOSE = "works on the host"

    def _ready(self, task: Task) -> None:
        """Fail, before anything is sent, when pywinrm or a winrm connection is missing."""
        if not HAS_WINRM:
            raise AnsibleActionFail(
                f"{task.host}: {missing_required_lib('pywinrm')}", orig_exc=WINRM_IMPORT_ERROR
            )
        if not self._uses_winrm_connection():
            raise AnsibleActionFail(
                f"{task.host}: {self.MODULE_NAME} {self.WINRM_PURPOSE} over WinRM and needs "
                f"ansible_connection=winrm (this host uses {self._connection.transport!r}). "
                f"Set ansible_connection: winrm and the ansible_winrm_* settings for it. "
                f"{NOTHING_CHANGED}"
            )

    def _uses_winrm_connection(self) -> bool:
        """Whether the task's host is reached with the winrm connection, whose options name the
        endpoint and credentials."""
        return getattr(self._connection, "_load_name", None) in WINRM_CONNECTIONS

    def _reach(
        self,
        host: str,
        get_option: t.Callable[[str], t.Any],
        host_vars: t.Mapping[str, t.Any],
        timeout: int,
    ) -> Reach:
        """Where HOST's commands run: on HOST with its connection options (GET_OPTION), or,
        when its variables (HOST_VARS) name an exchange_jump_host, on that inventory host with
        its own options. Raises WinrsConfigError naming HOST when the settings cannot work."""
        jump = jump_host_of(host, host_vars)
        if jump is None:
            return direct_reach(host, get_option, timeout)
        jump_options = self._jump_options(host, jump)
        return reach_through(
            host, get_option, host_vars, jump, jump_options, self._inventory_vars()[jump], timeout
        )

    def _jump_options(self, host: str, jump: str) -> t.Callable[[str], t.Any]:
        """The winrm connection options of HOST's jump host JUMP, from its inventory entry;
        WinrsConfigError naming HOST when JUMP is not in the inventory or its settings cannot
        be read."""
        inventory = self._inventory_vars()
        if jump not in inventory:
            raise WinrsConfigError(
                f"{host} (through {jump})",
                f"{JUMP_HOST_VAR} is {jump!r}, which is not a host of the inventory. Add the "
                "Windows jump host to the inventory with its ansible_* / ansible_winrm_* "
                f"settings, or correct {JUMP_HOST_VAR}.",
            )
        return inventory_host_options(
            jump,
            inventory[jump],
            self._connection,
            self._play_context,
            self._task,
            purpose=f"{self.MODULE_NAME} reaches {host} through it",
        )

    def _inventory_vars(self) -> t.Mapping[str, t.Mapping[str, t.Any]]:
        """Every inventory host's variables (hostvars), as the task was given them."""
        return self._task_vars.get("hostvars") or {}

    def _task_host_vars(self, task: Task) -> t.Mapping[str, t.Any]:
        """The variables of the host the task works on: the delegated one's under delegate_to
        (the task's own variables are the inventory host's)."""
        if self._task.delegate_to:
            return self._inventory_vars().get(task.host) or {}
        return task.task_vars

    def _task_reach(self, task: Task, timeout: int) -> Reach:
        """Where the task's host's commands run (_reach), from its connection options and
        inventory variables."""
        return self._reach(
            task.host, self._connection.get_option, self._task_host_vars(task), timeout
        )

    @staticmethod
    @contextlib.contextmanager
    def _shell(reach: Reach, timeout: int, secrets: tuple[str, ...] = ()) -> t.Iterator[WinrsShell]:
        """A WinRS shell where REACH says, SECRETS masked; through a jump host it holds one of
        the jump host's shell slots (_reach.shell_slot) while it is open."""
        with shell_slot(reach, timeout), WinrsShell(reach.target, secrets=secrets) as shell:
            yield shell

    def _read_exchange(
        self,
        host: str,
        get_option: t.Callable[[str], t.Any],
        host_vars: t.Mapping[str, t.Any],
        kms_event_count: int,
        timeout: int,
    ) -> dict[str, t.Any]:
        """Read one host's Exchange facts with its winrm connection options and inventory
        variables (through its jump host when they name one), as a task result:
        `ansible_facts` (and `warnings`) when read, else `unreachable` or `failed` with a `msg`
        that names the host (as a pair's verdict quotes it: the module adds its closing
        sentence, see `_said`). Never raises for the host's answers: ansible-core 2.19 applies
        failed_when / ignore_errors only to results, and a gate must judge every pair even when
        one host refuses."""
        try:
            reach = self._reach(host, get_option, host_vars, timeout)
        except WinrsError as exc:
            return {"failed": True, "msg": str(exc)}
        try:
            with self._shell(reach, timeout) as shell:
                _sections, readings = read_facts(
                    shell.run,
                    facts_probe(kms_event_count, reach.remote),
                    kms_event_count,
                    progress=lambda message: display.vv(f"{host}: {message}"),
                    remote=reach.remote,
                )
        except WinrsError as exc:
            return {("unreachable" if exc.unreachable else "failed"): True, "msg": str(exc)}
        except RemoteUnreadable as exc:
            # The jump host answers, the server behind it does not: for the gate, unreachable.
            message = remote_failure_message(reach, exc.error, exc.text)
            return {"unreachable": True, "msg": f"{reach.target.label}: {message}"}
        except (ProbeError, FactsError, ParseError) as exc:
            return {
                "failed": True,
                "msg": f"{host}: could not read the Exchange facts: {to_text(exc)}. "
                f"{UNEXPECTED_ANSWER}",
            }
        return {
            "ansible_facts": {"exchange": {**readings.facts, "reach": reach.facts()}},
            "warnings": [f"{host}: {warning}" for warning in readings.warnings],
        }
