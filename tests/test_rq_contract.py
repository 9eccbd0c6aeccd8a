"""The contract between responder's worker and RQ: what ``ResponderWorker`` overrides in RQ
(``responder.worker_rq.RQ_OVERRIDES``) still exists in the installed RQ with the parameters the
overrides rely on, the list is complete, the RQ state they touch is still there, and the RQ code
they copy or rely on is unchanged. Each check fails when an RQ release renames, removes or changes
what it checks; then review the overrides named in the failure against the new RQ before widening
pyproject's range."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from redis import Redis
from rq.executions import Execution
from rq.job import Job
from rq.worker import SimpleWorker

from responder.worker_rq import RQ_OVERRIDES, ResponderWorker

ROOT = Path(__file__).resolve().parents[1]

# sha256 (first 16 hex digits) of the source of the RQ code an override copies or whose order of calls
# it relies on (each Override.depends_on). A mismatch means RQ changed it: review the overrides that name
# it against the new code, then record the new fingerprint here.
FINGERPRINTS = {
    "rq.executions.prepare_execution": "e8d5a964e2a10d0c",
    "rq.worker.BaseWorker._finalize_failure": "e10fdbb823f8da4a",
    "rq.worker.BaseWorker._finalize_success": "4b986d4065256457",
    "rq.worker.BaseWorker.clean_registries": "3b6158366e582b3c",
    "rq.worker.BaseWorker.dequeue_timeout": "293607662bfa938b",
    "rq.worker.BaseWorker.handle_execution_ended": "663a461e6a0b9486",
    "rq.worker.BaseWorker.heartbeat": "c4b63f8a50ca1def",
    "rq.worker.BaseWorker.perform_job": "38fcb4d8c0f8f1f8",
    "rq.worker.BaseWorker.prepare_job_execution": "d2c62836d49c959c",
    "rq.worker.BaseWorker.request_force_stop": "cd736cfbc7a5344c",
    "rq.worker.BaseWorker.request_stop": "d06386e1ca6caca3",
    "rq.worker.BaseWorker.set_state": "2fbc6e4fa5dcf245",
    "rq.worker.BaseWorker.work": "7c1d51ba20fed3d7",
    "rq.worker.SimpleWorker.execute_job": "19f81ccd38bbdc38",
}

# The arguments ResponderWorker.__init__ passes to RQ's constructor, by name.
INIT_KEYWORDS = ("connection", "worker_ttl", "job_monitoring_interval", "maintenance_interval")


def rq_definitions(name: str) -> list[tuple[str, Any]]:
    """Each definition of ``name`` in RQ's SimpleWorker and the classes it inherits from (SimpleWorker's
    own first): RQ calls it as any of them declares it."""
    return [(cls.__qualname__, vars(cls)[name]) for cls in SimpleWorker.__mro__[:-1] if name in vars(cls)]


def parameters(function: Any) -> list[tuple[str, str, bool]]:
    """Name, kind and whether it has a default, of each parameter of ``function``."""
    params = inspect.signature(function).parameters.values()
    return [(p.name, p.kind.name, p.default is not inspect.Parameter.empty) for p in params]


def resolve(path: str) -> Any:
    """The function (a property's getter) at dotted ``path``, e.g. ``rq.worker.BaseWorker.heartbeat``."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            found = inspect.getattr_static(found, name)
        return found.fget if isinstance(found, property) else found
    raise LookupError(path)


def fingerprint(path: str) -> str:
    source = textwrap.dedent(inspect.getsource(resolve(path)))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def test_the_installed_rq_is_within_the_range_pyproject_declares() -> None:
    """The overrides were checked against the RQ versions pyproject.toml allows, and no other."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [rq] = [r for r in map(Requirement, project["project"]["dependencies"]) if r.name == "rq"]
    installed = importlib.metadata.version("rq")
    assert rq.specifier.contains(installed), f"rq {installed} is installed, pyproject.toml declares {rq}"


def test_every_rq_method_or_attribute_the_worker_overrides_is_listed() -> None:
    """Whatever ResponderWorker defines that RQ's worker classes define too is in RQ_OVERRIDES, and
    nothing else is: a method RQ adds under a name ResponderWorker already uses fails here."""
    defined = {name for name in vars(ResponderWorker) if not name.startswith("__") or name == "__init__"}
    overridden = {name for name in defined if hasattr(SimpleWorker, name)}
    assert set(RQ_OVERRIDES) == overridden


@pytest.mark.parametrize("name", sorted(RQ_OVERRIDES))
def test_rq_still_defines_what_the_worker_overrides_with_the_parameters_it_relies_on(name: str) -> None:
    """RQ's method takes the parameters (names, kinds, optional or not) the override takes, so RQ's
    calls still reach the override correctly; a property stays a property, an attribute keeps its type."""
    entry = RQ_OVERRIDES[name]
    assert entry.why.strip()
    assert entry.private == (name.startswith("_") and not name.startswith("__"))
    definitions = rq_definitions(name)
    assert definitions, f"RQ no longer defines {name}"
    for where, rq in definitions:
        check_compatible(name, vars(ResponderWorker)[name], rq, where=where)


def check_compatible(name: str, ours: Any, rq: Any, *, where: str) -> None:
    """``ours`` can stand in for RQ's ``rq``, defined as ``name`` on RQ's class ``where``."""
    if isinstance(ours, property):
        assert isinstance(rq, property), f"RQ's {where}.{name} is no longer a property"
    elif not inspect.isfunction(ours):
        assert type(rq) is type(ours), f"RQ's {where}.{name} is a {type(rq).__name__} now"
    elif name == "__init__":
        assert inspect.isfunction(rq), f"RQ's {where}.__init__ is no longer a function"
        rq_params = inspect.signature(rq).parameters
        assert "queues" == list(rq_params)[1]
        for keyword in INIT_KEYWORDS:
            assert keyword in rq_params, f"RQ's worker no longer takes {keyword}="
            assert rq_params[keyword].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    elif [kind for _, kind, _ in parameters(ours)[1:]] == ["VAR_POSITIONAL", "VAR_KEYWORD"]:
        assert inspect.isfunction(rq), f"RQ's {where}.{name} is no longer a method"  # ours passes everything through
    else:
        assert inspect.isfunction(rq), f"RQ's {where}.{name} is no longer a method"
        assert parameters(rq) == parameters(ours), f"RQ's {where}.{name} changed its parameters"


def test_the_rq_worker_state_the_overrides_touch_is_still_there() -> None:
    """Each attribute an override reads or writes itself (Override.internals) is still set up by RQ's
    constructor, as is the pubsub thread the process loop stops."""
    worker = SimpleWorker(["contract"], connection=Redis(), prepare_for_work=False)  # no Redis round trip
    touched = {attribute for entry in RQ_OVERRIDES.values() for attribute in entry.internals}
    assert touched
    for attribute in sorted({*touched, "pubsub_thread"}):
        assert hasattr(worker, attribute), f"RQ's worker no longer has {attribute}"
    assert isinstance(worker.executions, dict) and isinstance(worker._state, str)


def test_the_rq_calls_the_worker_makes_itself_still_take_its_arguments() -> None:
    """The calls of ResponderWorker._start (RQ's prepare_execution and prepare_job_execution, copied)
    and of the process loop (work) still bind to RQ's signatures."""
    job, pipe = object(), object()
    inspect.signature(Execution.create).bind(job, 60, pipeline=pipe, worker_name="w")
    inspect.signature(Job.heartbeat).bind(job, "now", 60, pipeline=pipe)
    inspect.signature(Job.prepare_for_execution).bind(job, "w", pipeline=pipe)
    inspect.signature(SimpleWorker.work).bind(object(), burst=False, with_scheduler=True, logging_level="INFO")
    inspect.signature(SimpleWorker.perform_job).bind(object(), job, "queue", "execution")


def test_the_rq_code_the_overrides_copy_or_rely_on_is_unchanged() -> None:
    """Each piece of RQ code an override copies, or relies on calling it in a given order, has the
    source it was reviewed against."""
    depended = {path for entry in RQ_OVERRIDES.values() for path in entry.depends_on}
    assert depended == set(FINGERPRINTS), "fingerprint what RQ_OVERRIDES depends on, and only that"
    changed = {path for path in sorted(depended) if fingerprint(path) != FINGERPRINTS[path]}
    users = {path: [name for name, entry in RQ_OVERRIDES.items() if path in entry.depends_on] for path in changed}
    assert not changed, f"RQ changed code these overrides copy or rely on; review them: {users}"
