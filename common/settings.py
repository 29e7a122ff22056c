"""Settings from the environment: one declaration per ``CLASSHUB_*`` variable.

Every classhub setting is one traitlets trait. Where a ``CLASSHUB_*`` variable feeds a
trait, an :class:`EnvSetting` names the variable, the value without it, how the text is
read and what a bad value must look like, and a class's :class:`EnvTable` (applied with
the :meth:`EnvTable.install` decorator) becomes the traits' ``@default``\\ s. The same
table tells the hub which variables to pass into a service's ``environment``
(:meth:`EnvTable.passed`), and the admin guide's settings tables are generated from the
traits and these tables (``make docs``: ``scripts/settingsdoc.py``). So a setting is declared
once, next to its trait, and nothing else copies its variable or its default.

An empty variable counts as unset (unless ``keep_empty``). A value that cannot be read
raises :class:`traitlets.TraitError` naming the variable and what it must be, so the
process that reads it refuses to start with a message saying what to fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from traitlets import TraitError, default
from traitlets.config import Configurable
from traitlets.utils.bunch import Bunch

from .errors import ConfigError


def _text(raw: str) -> str:
    return raw


def number(raw: str) -> float:
    """A float; ``ValueError`` for anything else."""
    return float(raw)


def whole(raw: str) -> int:
    """An int; ``ValueError`` for anything else."""
    return int(raw)


def comma_list(raw: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [v.strip() for v in raw.split(",") if v.strip()]


def one_of(choices: tuple[str, ...], why: str = "") -> Callable[[str], str]:
    """A parser taking exactly one of ``choices``; its ``ValueError`` says ``why`` (else
    repeats the value)."""

    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(why or raw)
        return raw

    return parse


def switch(raw: str) -> bool:
    """``0``, ``false``, ``no`` (any case) are off, anything else on."""
    return raw.lower() not in ("0", "false", "no")


@dataclass(frozen=True)
class EnvSetting:
    """One trait fed by one environment variable.

    ``trait``: the trait's name (empty for a shared declaration that a table takes over
    with :meth:`of`, see ``common/hubenv.py``). ``env``: the variable.
    ``default``: the value when the variable is unset, or a callable ``f(obj)`` that
    computes it from the object's other traits. ``parse``: text to value, raising
    ``ValueError`` for a bad value. ``expect``: what a good value is, in words, for the
    error message. ``also``: further variables tried in order when ``env`` is unset.
    ``doc_default``: the default as the admin guide shows it, when ``default`` is a
    callable. ``keep_empty``: an empty variable is a value (not unset). ``off_when``: a
    variable that, when set (not empty), turns the setting off: it is then ``off``
    whatever its own variables say (the owner gate's URL under per-user origins).
    """

    trait: str
    env: str
    default: Any = ""
    parse: Callable[[str], Any] = _text
    expect: str = "a valid value"
    also: tuple[str, ...] = ()
    keep_empty: bool = False
    doc_default: str = ""
    #: never repeat the value in a message (a secret)
    sensitive: bool = False
    off_when: str = ""
    off: Any = ""
    #: what the variable means, for a variable that feeds no classhub trait (the hub's
    #: own, hub/settings.py): the admin guide's "Hub environment" table shows it
    doc: str = ""

    @property
    def variables(self) -> tuple[str, ...]:
        return (self.env, *self.also)

    def of(self, trait: str, **changes: Any) -> EnvSetting:
        """This variable's declaration as the source of ``trait`` (for a table)."""
        return replace(self, trait=trait, **changes)

    def read(self, obj: Any = None, environ: Mapping[str, str] | None = None) -> Any:
        """The value from the environment (``os.environ`` unless given), else the
        default."""
        environ = os.environ if environ is None else environ
        if self.off_when and environ.get(self.off_when, "").strip():
            return self.off
        for name in self.variables:
            raw = environ.get(name)
            if raw is None:
                continue
            raw = raw.strip()
            if not raw:
                if self.keep_empty:
                    return self.parse(raw)
                continue
            try:
                return self.parse(raw)
            except ValueError as e:
                if self.sensitive:
                    raise TraitError(f"{name} must be {self.expect}") from None
                detail = "" if self.parse in (number, whole) else f" ({e})"
                got = f"got {raw[:40]!r}{detail}"
                raise TraitError(f"{name} must be {self.expect}, {got}") from None
        return self.default(obj) if callable(self.default) else self.default

    def shown_default(self) -> str:
        """The default as text for the admin guide."""
        if self.doc_default:
            return self.doc_default
        if callable(self.default):
            return "computed (see the help)"
        if self.default == "" or self.default == []:
            return "empty"
        return repr(self.default)


@dataclass(frozen=True)
class EnvTable:
    """The settings of one class (or mixin) that come from the environment."""

    settings: tuple[EnvSetting, ...]
    #: variables that are passed on as they are, named here so the table is complete
    extra: tuple[str, ...] = field(default=())
    #: checks across settings: ``f(environ)`` returns a problem to fix, or None
    checks: tuple[Callable[[Mapping[str, str]], str | None], ...] = field(default=())

    def __post_init__(self) -> None:
        traits = [s.trait for s in self.settings if s.trait]
        dupes = {t for t in traits if traits.count(t) > 1}
        if dupes:
            raise ValueError(f"traits declared twice in one table: {sorted(dupes)}")

    def __add__(self, other: EnvTable) -> EnvTable:
        return EnvTable(
            self.settings + other.settings, self.extra + other.extra, self.checks + other.checks
        )

    def __iter__(self):
        return iter(self.settings)

    def get(self, trait: str) -> EnvSetting | None:
        for s in self.settings:
            if s.trait == trait:
                return s
        return None

    @property
    def variables(self) -> tuple[str, ...]:
        """Every variable the table names, in order, without repeats."""
        seen: dict[str, None] = {}
        for s in self.settings:
            for name in s.variables:
                seen.setdefault(name)
        for name in self.extra:
            seen.setdefault(name)
        return tuple(seen)

    @property
    def passed_variables(self) -> tuple[str, ...]:
        """The variables the hub passes on: each setting's own ``env`` and ``extra``,
        never the ``also`` fallbacks (those serve a service run by hand, and may hold
        another component's credentials, such as the hub's ``CLASSHUB_DB_URL``)."""
        seen: dict[str, None] = {}
        for name in (*(s.env for s in self.settings), *self.extra):
            seen.setdefault(name)
        return tuple(seen)

    def passed(self, env: Mapping[str, str], leave_out: Iterable[str] = ()) -> dict[str, str]:
        """What the hub passes into a service's ``environment``: every variable of
        :attr:`passed_variables` that is set (and not empty) in ``env``, except
        ``leave_out`` (values the hub computes itself, such as the service's own
        database URL)."""
        skip = set(leave_out)
        return {k: env[k] for k in self.passed_variables if k not in skip and env.get(k)}

    def install(self, cls: type[Configurable]) -> type[Configurable]:
        """Class decorator: each setting's ``read``, checked by the trait's ``@validate``,
        becomes the ``@default`` of its trait on ``cls``; :func:`env_table` finds the
        table again (for the docs).

        A trait may have only one default: a hand-written ``@default`` on ``cls`` for a
        trait of the table is an error."""
        own = dict(cls.__dict__.get("_trait_default_generators", {}))
        for s in self.settings:
            if not s.trait:
                continue
            if s.trait not in cls.class_traits():
                raise TypeError(f"{cls.__name__} has no trait {s.trait!r} (table entry {s.env})")
            if s.trait in own:
                raise TypeError(
                    f"{cls.__name__}.{s.trait} has a @default of its own and a table entry "
                    f"({s.env}): keep one"
                )

            def read(obj, setting=s):
                value = setting.read(obj)
                # traitlets runs @validate on set values only: a value from the environment
                # gets the trait's checks (and their fix-it messages) all the same
                check = obj._trait_validators.get(setting.trait)
                if check is not None:
                    trait = obj.traits()[setting.trait]
                    value = trait.validate(obj, value) if hasattr(trait, "validate") else value
                    value = check(obj, Bunch(trait=trait, value=value, owner=obj))
                return value

            handler = default(s.trait)(read)
            attr = f"_default_{s.trait}_from_env"
            setattr(cls, attr, handler)
            handler.class_init(cls, attr)
            cls._all_trait_default_generators[s.trait] = handler
            cls._static_immutable_initial_values.pop(s.trait, None)
        cls._classhub_env_table = self
        return cls


def check_environment(environ: Mapping[str, str], *tables: EnvTable) -> None:
    """Read every variable of ``tables`` that is set, and run their checks, so that a bad
    value stops the process at start-up (the hub: ``jupyterhub_config.py``) rather than
    at the first spawn. Raises :class:`common.errors.ConfigError` with the fix."""
    for table in tables:
        for s in table.settings:
            if any(environ.get(name, "").strip() for name in s.variables):
                try:
                    s.read(environ=environ)
                except TraitError as e:
                    raise ConfigError(str(e)) from None
        for check in table.checks:
            problem = check(environ)
            if problem:
                raise ConfigError(problem)


def env_table(cls: type) -> EnvTable:
    """The environment settings of ``cls`` and its bases (empty when it has none)."""
    table = EnvTable(())
    seen: set[int] = set()
    for klass in reversed(cls.__mro__):
        t = klass.__dict__.get("_classhub_env_table")
        if isinstance(t, EnvTable) and id(t) not in seen:
            seen.add(id(t))
            own = tuple(s for s in t.settings if s not in table.settings)
            extra = tuple(e for e in t.extra if e not in table.extra)
            table = EnvTable(table.settings + own, table.extra + extra)
    return table


def named(obj: Any, proposal: Any) -> str:
    """The trait of a ``@validate`` ``proposal`` (or a trait name) as a fix-it message names
    it: with its variable when a table feeds it, e.g. ``cull_interval
    (CLASSHUB_CULL_INTERVAL)``."""
    trait = proposal if isinstance(proposal, str) else proposal.trait.name
    setting = env_table(type(obj)).get(trait)
    return f"{trait} ({setting.env})" if setting is not None else trait


def read_env(
    name: str,
    fallback: Any = "",
    parse: Callable[[str], Any] = _text,
    expect: str = "a valid value",
    environ: Mapping[str, str] | None = None,
) -> Any:
    """One variable read as an :class:`EnvSetting` would (for a default computed from
    several variables)."""
    return EnvSetting("", name, fallback, parse, expect).read(environ=environ)
