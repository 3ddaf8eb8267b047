"""The images, built on this machine as the Dockerfile builds them, so that what ships is what is tested.

There is no Docker engine here, so this reads the Dockerfile and carries out its instructions itself:
``FROM`` chains the stages, ``ARG``/``ENV`` build the environment, ``WORKDIR``/``COPY`` lay out the
files (from the build context that ``.dockerignore`` leaves), ``RUN`` runs in ``sh``, ``CMD`` is the
command line. The image's root directory ``/`` is a directory of its own; every absolute path in the
instructions is read inside it. The base image (``python:<version>-slim``) is this machine's Python in a
fresh virtual environment that holds nothing but what the ``RUN`` lines install.

Two things of an image are not reproduced, and are checked offline instead (tests/deploy/test_images.py):
the system user (``groupadd``/``useradd``/``chown`` need root and the image's /etc, so those commands
are skipped) and ``USER`` itself.

The virtual environment of the first stage (the dependencies) is cached under ``~/.cache/todo/image``,
keyed by that stage's instructions and the files it copies: a changed dependency list builds a new one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TODO_CACHE", Path.home() / ".cache" / "todo"))
# Commands of RUN lines that need root and the image's own /etc: the image's user is checked offline.
SKIPPED_COMMANDS = frozenset({"groupadd", "useradd", "chown"})


class DockerfileError(ValueError):
    """An instruction this builder does not know how to carry out."""


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


@dataclass(frozen=True)
class Stage:
    name: str
    base: str  # another stage's name, or an external image
    instructions: tuple[Instruction, ...]


def parse(text: str) -> tuple[dict[str, str], dict[str, Stage]]:
    """The global ARG defaults and the stages of a Dockerfile, by name."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: tuple[str, str, list[Instruction]] | None = None
    for line in logical:
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            if current is not None:
                stages[current[0]] = Stage(current[0], current[1], tuple(current[2]))
            found = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", value, re.IGNORECASE)
            if found is None:
                raise DockerfileError(f"every stage needs a name: FROM {value}")
            current = (found.group(2), found.group(1), [])
        elif current is None:
            if keyword != "ARG":
                raise DockerfileError(f"{keyword} before the first FROM")
            name, _, default = value.partition("=")
            args[name] = default
        else:
            current[2].append(Instruction(keyword, value))
    if current is not None:
        stages[current[0]] = Stage(current[0], current[1], tuple(current[2]))
    return args, stages


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def _env_pairs(value: str, env: dict[str, str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for token in shlex.split(value):
        name, sep, raw = token.partition("=")
        if not sep:
            raise DockerfileError(f"ENV {value}: use the NAME=value form")
        pairs[name] = _expand(raw, {**env, **pairs})
    return pairs


def _ignored(path: PurePosixPath, rules: list[tuple[bool, str]]) -> bool:
    """.dockerignore: the last rule that matches the path or one of its parents decides."""
    excluded = False
    candidates = [str(path), *(str(p) for p in path.parents if str(p) != ".")]
    for negated, pattern in rules:
        if any(fnmatch.fnmatchcase(c, pattern) or (pattern.startswith("**/") and
               (fnmatch.fnmatchcase(c, pattern[3:]) or fnmatch.fnmatchcase(c, "*/" + pattern[3:])))
               for c in candidates):
            excluded = not negated
    return excluded


@dataclass
class BuildContext:
    """The files ``docker build`` would send: the project without what .dockerignore leaves out."""

    root: Path = ROOT

    def __post_init__(self) -> None:
        ignore = self.root / ".dockerignore"
        lines = ignore.read_text().splitlines() if ignore.is_file() else []
        self.rules = [(line.startswith("!"), line.removeprefix("!").strip().rstrip("/"))
                      for line in (raw.strip() for raw in lines) if line and not line.startswith("#")]

    def files(self, source: str) -> Iterator[tuple[Path, PurePosixPath]]:
        """(file, path relative to ``source``) of every file under ``source`` that the context holds."""
        top = self.root / source
        if top.is_file():
            if not _ignored(PurePosixPath(source), self.rules):
                yield top, PurePosixPath(top.name)
            return
        found = [path for path in sorted(top.rglob("*")) if top.is_dir() and path.is_file()
                 and not _ignored(PurePosixPath(path.relative_to(self.root).as_posix()), self.rules)]
        if not found:
            raise DockerfileError(f"COPY {source}: not in the build context")
        for path in found:
            yield path, PurePosixPath(path.relative_to(top).as_posix())


@dataclass
class Image:
    """A built image: its root directory, the environment its ENV lines made, WORKDIR and CMD."""

    name: str
    root: Path  # the image's "/"
    python: Path  # the base image's interpreter (a virtual environment of its own)
    env: dict[str, str]
    workdir: str
    cmd: list[str]

    def path(self, image_path: str) -> Path:
        """A path of the image, on this machine."""
        return self.root / image_path.lstrip("/")

    def local(self, value: str) -> str:
        """``value`` with each absolute path that exists in the image rewritten to where it lies here."""
        def rewrite(match: re.Match[str]) -> str:
            found = match.group(0)
            top = found.strip("/").split("/", 1)[0]
            return str(self.path(found)) if top and (self.root / top).exists() else found
        return re.sub(r"(?<![\w.:])/[\w.\-/]+", rewrite, value)

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """What a process of this image sees: the image's ENV (paths local), the base image's PATH, then
        ``extra`` (the container's env of a manifest, or the stack's)."""
        env = {"PATH": f"{self.python.parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(self.path("/nonexistent"))}
        env.update({k: self.local(v) for k, v in self.env.items()})
        env.update(extra or {})
        return env

    def command(self, command: list[str] | None = None, args: list[str] | None = None) -> list[str]:
        """Kubernetes' rule: ``command`` replaces the image's entry point and, without ``args``, its CMD."""
        argv = list(command) + list(args or []) if command else list(args or self.cmd)
        return [self.local(a) for a in argv]

    @property
    def cwd(self) -> Path:
        return self.path(self.workdir)


@dataclass
class Builder:
    """Builds a target stage of the Dockerfile into ``work`` (one directory per image)."""

    work: Path
    root: Path = ROOT
    cache: Path = CACHE
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.args, self.stages = parse((self.root / "Dockerfile").read_text())
        self.context = BuildContext(self.root)

    def chain(self, target: str) -> list[Stage]:
        stages = []
        name = target
        while name in self.stages:
            stages.append(self.stages[name])
            name = self.stages[name].base
        if not stages:
            raise DockerfileError(f"no stage {target!r} in the Dockerfile")
        return stages[::-1]

    def build(self, target: str, build_args: dict[str, str] | None = None, name: str | None = None) -> Image:
        stages = self.chain(target)
        image_root = self.work / (name or target)
        if image_root.exists():
            shutil.rmtree(image_root)
        image_root.mkdir(parents=True)
        args = {**self.args, **(build_args or {})}
        first = stages[0]
        python = self._base(first, args)
        env: dict[str, str] = {}
        visible: dict[str, str] = {k: v for k, v in args.items() if k in self.args}
        workdir, cmd = "/", ["python3"]
        for stage in stages:
            for ins in stage.instructions:
                scope = {**visible, **env}
                if ins.keyword == "ARG":
                    arg, _, default = ins.value.partition("=")
                    visible[arg] = args.get(arg, _expand(default, scope))
                elif ins.keyword == "ENV":
                    env.update(_env_pairs(ins.value, scope))
                elif ins.keyword == "WORKDIR":
                    workdir = str(PurePosixPath(workdir) / _expand(ins.value, scope))
                    (image_root / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
                elif ins.keyword == "COPY":
                    self._copy(_expand(ins.value, scope), image_root, workdir)
                elif ins.keyword == "RUN":
                    if stage is first and self._cached(first, python):
                        continue  # the dependencies are in the cached environment already
                    image = Image(target, image_root, python, env, workdir, cmd)
                    self._run(_expand(ins.value, scope), image, scope)
                elif ins.keyword == "CMD":
                    cmd = json.loads(ins.value)
                elif ins.keyword in ("USER", "EXPOSE"):
                    continue  # the user is checked offline; ports are the caller's
                else:
                    raise DockerfileError(f"{ins.keyword} is not carried out by todo_dev.image")
            if stage is first:
                self._mark_cached(first, python)
        return Image(name or target, image_root, python, env, workdir, cmd)

    # -- the base image and its cache -------------------------------------------------------------

    def _key(self, stage: Stage) -> str:
        """The first stage's identity: its instructions and the files its COPY lines bring."""
        digest = hashlib.sha256(f"{sys.version_info[:2]}".encode())
        for ins in stage.instructions:
            digest.update(f"{ins.keyword} {ins.value}\n".encode())
            if ins.keyword == "COPY":
                for source in shlex.split(ins.value)[:-1]:
                    for path, _ in self.context.files(source):
                        digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def _base(self, stage: Stage, args: dict[str, str]) -> Path:
        base = _expand(stage.base, args)
        wanted = re.fullmatch(r"python:(\d+\.\d+)(?:-slim)?", base)
        if wanted is None:
            raise DockerfileError(f"FROM {base}: only python:<version>[-slim] bases are built here")
        have = f"{sys.version_info.major}.{sys.version_info.minor}"
        if wanted.group(1) != have:
            raise DockerfileError(f"FROM {base}: this machine's Python is {have}")
        venv = self.cache / "image" / f"deps-{self._key(stage)}"
        python = venv / "bin" / "python"
        if not self._cached(stage, python):
            if venv.exists():
                shutil.rmtree(venv)
            base_python = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
            self.log.append(f"base image: a new virtual environment {venv}")
            # Keep the newest few: an older dependency list is rarely built again.
            for old in sorted(venv.parent.glob("deps-*"), key=lambda p: p.stat().st_mtime)[:-3]:
                shutil.rmtree(old, ignore_errors=True)
        return python

    @staticmethod
    def _cached(stage: Stage, python: Path) -> bool:
        return (python.parent.parent / ".built").is_file()

    @staticmethod
    def _mark_cached(stage: Stage, python: Path) -> None:
        (python.parent.parent / ".built").write_text("the RUN lines of the first stage ran to completion\n")

    # -- instructions -----------------------------------------------------------------------------

    def _copy(self, value: str, image_root: Path, workdir: str) -> None:
        *sources, dest = shlex.split(value)
        if any(s.startswith("--") for s in sources):
            raise DockerfileError(f"COPY {value}: flags are not carried out")
        target = PurePosixPath(workdir) / dest
        for source in sources:
            for path, relative in self.context.files(source):
                into = (target / relative) if dest.endswith("/") or (self.root / source).is_dir() else target
                local = image_root / str(into).lstrip("/")
                local.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, local)

    def _run(self, script: str, image: Image, scope: dict[str, str]) -> None:
        kept = [part for part in re.split(r"\s&&\s", script)
                if shlex.split(part.strip())[:1] and shlex.split(part.strip())[0] not in SKIPPED_COMMANDS]
        if not kept:
            return
        command = image.local(" && ".join(part.strip() for part in kept))
        self.log.append(f"RUN {command}")
        env = image.environment({k: image.local(v) for k, v in scope.items()})
        done = subprocess.run(["sh", "-c", command], cwd=image.cwd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise DockerfileError(f"RUN {script} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
