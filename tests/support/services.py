"""What the test-service modules (postgres, hapi, kafka) share: finding their parts, and the rule
that under CI (``CI=true``) a missing service fails the run while elsewhere it skips the test."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def unavailable(what: str, reason: str) -> None:
    """Fail under CI, skip otherwise: a missing service must never pass silently in CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not available: {reason}", pytrace=False)
    pytest.skip(f"{what} is not available: {reason}")


def maven_jar_dir(script: Path) -> tuple[Path | None, str | None]:
    """The jar directory a ``scripts/ensure-*.sh`` wrapper of fetch-maven-jars.sh reports, and
    why it cannot be used (None if it can)."""
    try:
        result = subprocess.run([str(script), "--print-dir"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{script.relative_to(ROOT)} --print-dir failed: {exc}"
    path = Path(result.stdout.strip()) if result.stdout.strip() else None
    if result.returncode != 0:
        return path, result.stderr.strip() or f"{script.name} --print-dir exited {result.returncode}"
    return path, None


def java_problem(purpose: str, need_compiler: bool = False, java: str = "java") -> str | None:
    """Why ``java`` (17 or newer; with the JDK compiler if `need_compiler`) cannot serve `purpose`."""
    if shutil.which(java) is None:
        return f"`java` is not on PATH; {purpose} needs Java 17+ (Debian: openjdk-17-jdk-headless)"
    try:
        # properties on stderr, modules on stdout: one JVM start for both
        probe = subprocess.run(
            [java, "-XshowSettings:properties", "--list-modules"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`java --list-modules` failed: {exc}"
    match = re.search(r"^\s*java\.specification\.version = (\d+)", probe.stderr, re.MULTILINE)
    if match is None or int(match.group(1)) < 17:
        found = match.group(1) if match else "unknown"
        return f"{purpose} needs Java 17 or newer (found specification version {found})"
    if need_compiler and not re.search(r"^jdk\.compiler@", probe.stdout, re.MULTILINE):
        return f"{purpose} needs a JDK, not just a JRE (the source launcher compiles it)"
    return None
