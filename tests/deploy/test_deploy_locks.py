"""Each image's lock (services/<service>/requirements.lock, from scripts/lock.py) still satisfies
what its distributions declare, offline: every dependency that services/api, services/runtime
and the service's pyproject.toml name (and the extras they ask for) is pinned in the lock at a
version inside the declared range, for the images' Python 3.11 on Linux; every pin is hashed;
the build backend is there; no switchyard distribution and nothing of another service is.

The whole dependency tree (what the pinned packages themselves need) is checked where it can
only be checked, by installing the lock: the slow install test in test_deploy_dockerfiles.py
runs each build stage with --require-hashes and `pip check`.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

import pytest
from deploy_images import (
    IMAGE_ENVIRONMENT,
    IMAGES,
    NOWHERE,
    OWN_HEAVY,
    LockedRequirement,
    others_heavy,
    pyproject,
    read_lock,
)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def _folders(service: str) -> list[str]:
    return ["services/api", "services/runtime", IMAGES[service].folder]


def declared(service: str) -> list[Requirement]:
    """The dependencies the image's three distributions declare, switchyard's own left out."""
    requirements = [
        Requirement(line)
        for folder in _folders(service)
        for line in pyproject(folder)["project"]["dependencies"]
    ]
    return [r for r in requirements if not canonicalize_name(r.name).startswith("switchyard-")]


def _extra_packages(requirement: Requirement) -> set[str]:
    """What the requirement's extras add (e.g. psycopg[binary,pool]: psycopg-binary and
    psycopg-pool), read from the metadata of the release installed in this environment."""
    if not requirement.extras:
        return set()
    added: set[str] = set()
    for line in importlib.metadata.requires(requirement.name) or []:
        dependency = Requirement(line)
        for extra in requirement.extras:
            environment = {**IMAGE_ENVIRONMENT, "extra": extra}
            if dependency.marker is not None and dependency.marker.evaluate(environment):
                if "extra" in str(dependency.marker):
                    added.add(canonicalize_name(dependency.name))
    return added


def unsatisfied(requirements: Iterable[Requirement], lock: list[LockedRequirement]) -> list[str]:
    """Why the lock does not satisfy `requirements` on the images' Python (empty: it does)."""
    pins = {entry.name: entry.version for entry in lock if entry.applies()}
    problems = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate(
            dict(IMAGE_ENVIRONMENT)
        ):
            continue
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement}: {name} is not in the lock")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement}: the lock pins {name}=={pins[name]}")
        problems.extend(
            f"{requirement}: {extra} (from its extras) is not in the lock"
            for extra in sorted(_extra_packages(requirement) - set(pins))
        )
    return problems


@pytest.fixture(scope="module", params=sorted(IMAGES))
def service_lock(request: pytest.FixtureRequest) -> tuple[str, list[LockedRequirement]]:
    service = request.param
    return service, read_lock(IMAGES[service].lock.read_text())


def test_the_lock_satisfies_what_the_distributions_declare(service_lock) -> None:
    service, lock = service_lock
    problems = unsatisfied(declared(service), lock)
    assert not problems, f"{service}: {problems}; regenerate with python scripts/lock.py"


def test_the_lock_pins_the_build_backend(service_lock) -> None:
    # The image builds its own distributions with --no-build-isolation from the lock.
    service, lock = service_lock
    systems = [pyproject(folder)["build-system"] for folder in _folders(service)]
    backends = {line for system in systems for line in system["requires"]}
    assert not unsatisfied(map(Requirement, sorted(backends)), lock)


def test_every_pin_is_exact_and_hashed_and_only_this_services(service_lock) -> None:
    service, lock = service_lock
    text = IMAGES[service].lock.read_text()
    assert f"python scripts/lock.py {service}\n" in text.split("\n\n", 1)[0] + "\n"
    for entry in lock:
        assert str(entry.requirement.specifier).startswith("=="), entry.requirement
        assert entry.hashes and all(h.startswith("sha256:") for h in entry.hashes), entry.name
    names = {entry.name for entry in lock}
    assert not {n for n in names if n.startswith("switchyard")}, names
    forbidden = others_heavy(service) | NOWHERE
    assert not names & forbidden, names & forbidden
    assert OWN_HEAVY[service] <= names


def test_the_check_catches_a_lock_that_no_longer_satisfies(service_lock) -> None:
    service, lock = service_lock
    requirements = declared(service)
    first = requirements[0]
    # A range moved past the pinned version, then a dependency the lock has never heard of.
    name = canonicalize_name(first.name)
    (pin,) = [entry.version for entry in lock if entry.name == name and entry.applies()]
    raised = Requirement(f"{first.name}>=999")
    assert unsatisfied([raised], lock) == [f"{raised}: the lock pins {name}=={pin}"]
    assert unsatisfied([Requirement("left-pad-for-python>=1")], lock)
    # And a pin dropped from the lock.
    dropped = [entry for entry in lock if entry.name != name]
    assert unsatisfied(requirements, dropped)
    # An extra's package missing (the router's psycopg[binary,pool]).
    if service == "router":
        without_pool = [entry for entry in lock if entry.name != "psycopg-pool"]
        (problem,) = unsatisfied(requirements, without_pool)
        assert "psycopg-pool (from its extras)" in problem
