"""Checks that this Python's installed packages are exactly requirements.lock (run by .ci/run after installing it).

Fails (exit 1, one line per problem) when
- a requirement of requirements.txt / requirements-dev.txt is not satisfied by its pin in the lock (the lock is
  stale: run `make lock`),
- a locked package is missing or installed at another version,
- a package is installed that the lock does not name (an install step pulled something unpinned).
Ignored: pip itself, and torch's CUDA runtime (nvidia-*, cuda-*, triton), which scripts/lock.sh leaves out on
purpose. A local version label (torch 2.13.0+cpu) matches its pin (2.13.0), as in pip.
"""

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CUDA_RUNTIME = re.compile(r"^(nvidia-|cuda-|triton$)")


def requirement_lines(path: Path):
    """Yields the requirement lines of a requirements file, following `-r other.txt`."""
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            yield from requirement_lines(path.parent / line[3:].strip())
        elif line and not line.startswith("-"):
            yield line


def missing_extras(req: Requirement, locked: dict) -> list[str]:
    """What an extra (transformers[serving]) pulls in that the lock does not name (read from the installed
    package's metadata; nothing to say when it is not installed, the install check below says that)."""
    try:
        declared = metadata.requires(req.name) or []
    except metadata.PackageNotFoundError:
        return []
    out = []
    for extra in req.extras:
        for dep in map(Requirement, declared):
            if dep.marker is not None and "extra" in str(dep.marker) and dep.marker.evaluate({"extra": extra}) \
                    and canonicalize_name(dep.name) not in locked and not CUDA_RUNTIME.match(dep.name):
                out.append(f"requirements.lock is stale: {req.name}[{extra}] needs {dep.name} (run `make lock`)")
    return out


def main() -> int:
    locked = {}
    for line in requirement_lines(ROOT / "requirements.lock"):
        name, version = line.split(";", 1)[0].split("==")
        locked[canonicalize_name(name)] = Version(version.strip())
    problems = []
    for line in requirement_lines(ROOT / "requirements-dev.txt"):
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        pin = locked.get(canonicalize_name(req.name))
        if pin is None or not req.specifier.contains(pin, prereleases=True):
            problems.append(f"requirements.lock is stale: {line!r} but the lock pins {pin} (run `make lock`)")
        problems += missing_extras(req, locked)
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in metadata.distributions()}
    for name, pin in sorted(locked.items()):
        have = installed.get(name)
        if have is None or Version(have.public) != pin:
            problems.append(f"{name}: the lock pins {pin}, installed: {have or 'nothing'}")
    for name, have in sorted(installed.items()):
        if name not in locked and name != "pip" and not CUDA_RUNTIME.match(name):
            problems.append(f"{name} {have} is installed but not in requirements.lock (run `make lock`)")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"the environment is requirements.lock exactly ({len(locked)} packages)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
