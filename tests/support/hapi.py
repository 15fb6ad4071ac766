"""An independent FHIR R4B validator for the tests: the HAPI FHIR instance validator.

``HapiValidator`` runs ``tools/hapi-validator/Validate.java`` (Java 17 source launcher) in one
JVM and talks to it over stdin/stdout, one JSON document per line. It validates against the
FHIR R4B core definitions plus the project's conformance resources in ``profiles/``: every
``*.json`` there (recursively) that is a StructureDefinition, CodeSystem, ValueSet or
Questionnaire is loaded at start-up. Fully offline; unknown ``meta.profile`` URLs are errors,
references are not resolved, best-practice warnings are ignored.

Tests use the ``hapi_validator`` session fixture (import it into the test module:
``from tests.support.hapi import hapi_validator  # noqa: F401``)::

    def test_emitted_task_is_valid(hapi_validator, client):
        task = client.get("/fhir/Task/1").json()
        assert hapi_validator.errors(task) == []

Each issue is a dict ``{"severity": "fatal|error|warning|information", "location":
"Task.status", "message": "...", "messageId": "...", "line": 1, "col": 2}`` (the last three
only when HAPI gives them). ``errors()`` keeps only error and fatal issues.

The jars come from ``./scripts/ensure-hapi-validator.sh`` (run by ``./scripts/test.sh``); the
fixture asks that script for their directory (``--print-dir``). No Java 17 JDK or no jars:
the fixture fails under CI (``CI=true``) and skips otherwise.

Start-up takes several seconds (the R4B definitions are loaded) and the JVM uses about 1 GB,
so there is one per test session; a validation then takes some tens of milliseconds.
"""

from __future__ import annotations

import atexit
import collections
import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.services import java_problem, maven_jar_dir, unavailable

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure-hapi-validator.sh"
PROGRAM = Path("tools") / "hapi-validator" / "Validate.java"
PROFILES = ROOT / "profiles"

ERROR_SEVERITIES = frozenset({"error", "fatal"})


class HapiValidatorError(RuntimeError):
    """The validator process could not be started or stopped answering."""


class HapiValidator:
    """One validator JVM. ``start()`` it, ``validate()`` resources, ``stop()`` it."""

    def __init__(
        self,
        jar_dir: Path | str,
        profiles_dir: Path | str = PROFILES,
        *,
        java: str = "java",
        heap: str = "1g",
        start_timeout: float = 180.0,
        request_timeout: float = 120.0,
    ) -> None:
        self.jar_dir = Path(jar_dir)
        self.profiles_dir = Path(profiles_dir)
        self.java = java
        self.heap = heap
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        #: conformance resources loaded from the profiles directory
        self.loaded = 0
        #: profiles files that could not be (fully) used: [{"file": ..., "message": ...}]
        self.problems: list[dict[str, Any]] = []
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._next_id = 0

    @property
    def command(self) -> list[str]:
        return [
            self.java,
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",  # one GC thread: the machine is shared
            "-cp",
            str(self.jar_dir / "*"),  # expanded by java, not a shell
            str(PROGRAM),
            str(self.profiles_dir),
        ]

    def start(self) -> HapiValidator:
        if self._process is not None:
            raise HapiValidatorError("already started")
        self._process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        atexit.register(self.stop)
        self._threads = [
            threading.Thread(
                target=self._read_stdout, args=(self._process,), name="hapi-stdout", daemon=True
            ),
            threading.Thread(
                target=self._read_stderr, args=(self._process,), name="hapi-stderr", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()
        try:
            ready = self._receive(self.start_timeout, "start-up")
            if ready.get("ready") is not True:
                raise HapiValidatorError(f"unexpected first line from the validator: {ready!r}")
        except BaseException:
            self.stop()
            raise
        self.loaded = int(ready.get("loaded", 0))
        self.problems = list(ready.get("problems", []))
        return self

    def validate(self, resource: dict[str, Any]) -> list[dict[str, Any]]:
        """All issues HAPI reports for ``resource`` (a FHIR resource as JSON-ready data)."""
        with self._lock:
            if self._process is None:
                raise HapiValidatorError("the validator is not running; call start() first")
            self._next_id += 1
            request_id = str(self._next_id)
            # allow_nan=False: NaN/Infinity are not JSON, so fail here rather than in Java
            line = json.dumps({"id": request_id, "resource": resource}, allow_nan=False)
            try:
                assert self._process.stdin is not None
                self._process.stdin.write(line + "\n")
                self._process.stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as exc:
                raise HapiValidatorError(f"the validator is gone: {exc}{self._stderr_tail()}") from exc
            answer = self._receive(self.request_timeout, "validation")
            if answer.get("id") != request_id:
                raise HapiValidatorError(
                    f"answer for request {answer.get('id')!r}, expected {request_id!r}: {answer!r}"
                )
            return list(answer["issues"])

    def errors(self, resource: dict[str, Any]) -> list[dict[str, Any]]:
        """The issues of severity error or fatal: a valid resource has none."""
        return [i for i in self.validate(resource) if i.get("severity") in ERROR_SEVERITIES]

    def stop(self) -> None:
        """Ends the JVM (closing stdin makes it exit). Safe to call more than once."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        try:
            if process.stdin is not None:
                process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> HapiValidator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------

    def _read_stdout(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                self._lines.put(line)
        except (OSError, ValueError):
            pass
        self._lines.put(None)  # end of output: the JVM has exited

    def _read_stderr(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        try:
            for line in process.stderr:
                self._stderr.append(line.rstrip("\n"))
        except (OSError, ValueError):
            pass

    def _receive(self, timeout: float, what: str) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise HapiValidatorError(
                f"no answer from the validator within {timeout:.0f} s ({what}){self._stderr_tail()}"
            ) from None
        if line is None:
            self._lines.put(None)  # later calls see the end too
            code = self._process.poll() if self._process is not None else None
            raise HapiValidatorError(
                f"the validator exited (code {code}) during {what}{self._stderr_tail()}"
            )
        try:
            return json.loads(line)
        except json.JSONDecodeError as exc:
            raise HapiValidatorError(f"not a JSON line from the validator: {line!r}") from exc

    def _stderr_tail(self) -> str:
        if not self._stderr:
            return ""
        return "; its stderr ends with:\n" + "\n".join(self._stderr)


def jar_dir() -> tuple[Path | None, str | None]:
    """The validator's jar directory, and why it cannot be used (None if it can)."""
    return maven_jar_dir(SCRIPT)


def missing_reason() -> str | None:
    """Why the validator cannot be started here, or None if it can."""
    return java_problem("the HAPI FHIR validator", need_compiler=True) or jar_dir()[1]


@pytest.fixture(scope="session")
def hapi_validator() -> Iterator[HapiValidator]:
    """The HAPI FHIR validator for the whole test session, or skip (fail under CI=true)."""
    reason = missing_reason()
    if reason is not None:
        unavailable("the HAPI FHIR validator", reason)
    directory, _ = jar_dir()
    assert directory is not None
    validator = HapiValidator(directory).start()
    try:
        yield validator
    finally:
        validator.stop()
