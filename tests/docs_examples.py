"""The code blocks of the docs and the README, found in their sources and
told apart by the marker before each one.

Every literal block of ``docs/*.rst`` and of ``README.md`` (a
``.. code-block::``, a ``::`` paragraph, a ``.. literalinclude::``, a fenced
block, a ``>>>`` doctest block), and of every docstring a page shows through
autodoc, must have, as the line right before it (blank lines aside; for a
``::`` paragraph, right before the paragraph; inside a list item, use a
``code-block`` after the item's text, with its marker), one of::

    .. example: NAME [extends OTHER[,OTHER...]] [given NAME[,NAME...]] [mysql] [KIND]
    .. skip-example: why this block is not run

in Markdown ``<!-- example: ... -->`` and ``<!-- skip-example: ... -->``.
An unmarked block fails tests/test_docs_examples.py, so a block added later
must say how it runs, or why it does not.

The docstrings are those of the objects a page's ``auto*`` directives
document (``automodule``, ``autoclass``, ``autofunction``, ``automethod``,
``autoexception``, ``autodata``, with their ``:members:``): tests/
docs_autodoc.py imports them and walks their members as Sphinx does, and
tests/test_docs.py checks, entry by entry of the built HTML, that the
blocks found here are the blocks Sphinx shows.  In a docstring the marker
is an rst comment too (invisible on the page), and ``where`` is the line in
the package's source.

``NAME`` is unique; ``extends OTHER`` runs OTHER's code first, in the same
namespace (a fragment that continues another); ``given A,B`` names what the
test supplies (a ``handlers`` list, a ``check_password`` coroutine, the
imports of the module a docstring is in, ...: tests/docs_given.py).
``KIND`` is how it runs, and comes last:

``module`` (the default for Python)
    executed as a module (top-level ``await`` allowed), then the test's
    check for ``NAME``, if any, exercises what it defined over real HTTP.
``module FILE``
    the same; an example that ``extends`` it finds it written as ``FILE``
    beside it, and imports it (rather than running its code first).
``doctest`` (the default for a block that starts with ``>>>``)
    run by the doctest module (``ELLIPSIS``, ``NORMALIZE_WHITESPACE``), in
    the namespace of the module whose docstring shows it.
``pytest``
    written as a test file and run by pytest (with pytest-tornado) in a
    subprocess; every test in it must pass.
``program``
    a complete program: started in a subprocess (its port 8888 replaced by a
    free port), then the test's check talks to it over HTTP.
``template``
    a Tornado template, rendered by a real handler.
``env``
    a ``.env`` file: every variable it sets is one the library reads.
``console``
    commands (``$ ...``) run in a shell, in a fresh directory, with this
    interpreter's bin directory first on ``PATH``.
``include``
    a ``literalinclude`` of a file the suite runs itself (docs/recipes).

and ``mysql`` marks an example that needs a MySQL server: it runs in
tests/mysql/test_docs_examples.py, on the test server.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.docs_autodoc import Docstring, directive, documented

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
KINDS = {"module", "doctest", "pytest", "program", "template", "env", "console", "include"}
#: An example marked ``mysql`` needs a MySQL server: it runs in
#: tests/mysql/test_docs_examples.py, against the test server.
FLAGS = {"mysql"}


@dataclass
class Block:
    """One literal block of a source, with its marker."""

    source: Path
    #: The 1-based line of the block's directive, ``::`` paragraph or fence.
    line: int
    language: str
    code: str
    #: The file a ``literalinclude`` names, relative to the source.
    include: str | None = None
    name: str | None = None
    skip: str | None = None
    kind: str = ""
    extends: list[str] = field(default_factory=list)
    given: list[str] = field(default_factory=list)
    file: str | None = None
    flags: set[str] = field(default_factory=set)
    #: Why the marker is missing or wrong; empty when it is right.
    problem: str = ""
    #: In a docstring that autodoc shows: the id of its entry in the HTML
    #: (None for a module's own docstring, and outside docstrings).
    object_id: str | None = None
    #: In a docstring: the module whose namespace its doctests run in.
    module: str | None = None

    @property
    def where(self) -> str:
        """``file:line`` (in a docstring: of the docstring's own lines)."""
        return f"{self.source.relative_to(ROOT)}:{self.line}"


MARKER = re.compile(r"^\s*(?:\.\. |<!-- )(example|skip-example):\s*(.*?)\s*(?:-->)?\s*$")
DIRECTIVE = re.compile(r"^(\s*)\.\. (code-block|code|sourcecode|literalinclude)::\s*(\S*)\s*$")
OTHER_DIRECTIVE = re.compile(r"^\s*\.\. [\w:-]+::")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _body(lines: list[str], start: int, indent: int) -> tuple[str, int]:
    """The indented body starting at ``start`` (options skipped), and the
    index after it."""
    i = start
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
        i += 1
    body = [line for line in lines[start:i]]
    # Directive options (":pyobject: X") come first, before a blank line.
    while body and body[0].strip().startswith(":") and _indent(body[0]) > indent:
        body.pop(0)
    return textwrap.dedent("\n".join(body)).strip("\n") + "\n", i


def _options(lines: list[str], start: int, indent: int) -> dict[str, str]:
    options = {}
    for line in lines[start:]:
        m = re.match(r"\s*:([\w-]+):\s*(.*)$", line)
        if not line.strip() or _indent(line) <= indent or not m:
            break
        options[m.group(1)] = m.group(2)
    return options


def _marker(lines: list[str], before: int, block: Block) -> None:
    i = before - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    m = MARKER.match(lines[i]) if i >= 0 else None
    if m is None:
        block.problem = "no '.. example:' or '.. skip-example:' marker before it"
        return
    if m.group(1) == "skip-example":
        block.skip = m.group(2)
        if not block.skip:
            block.problem = "a skip-example marker must say why"
        return
    words = m.group(2).split()
    if not words:
        block.problem = "an example marker needs a name"
        return
    block.name = words.pop(0)
    while words:
        word = words.pop(0)
        if word in ("extends", "given") and words:
            getattr(block, word).extend(words.pop(0).split(","))
        elif word in FLAGS:
            block.flags.add(word)
        elif word in KINDS:
            block.kind = word
            if word == "module" and words and words[0] not in ("extends", "given"):
                block.file = words.pop(0)
        else:
            block.problem = f"unknown word {word!r} in the marker"
            return
    if not block.kind and block.code.lstrip().startswith(">>>"):
        block.kind = "doctest"
    if not block.kind:
        block.kind = "module" if block.language in ("python", "py") else ""
    if not block.kind:
        block.problem = f"say how a {block.language or 'literal'} block runs (one of {KINDS})"


def rst_blocks(path: Path) -> list[Block]:
    """The blocks of a page, and of the docstrings it shows through autodoc
    (tests/docs_autodoc.py finds them as Sphinx does), in order."""
    return _rst_blocks(path, path.read_text(encoding="utf-8").splitlines())


def _docstring_blocks(doc: Docstring) -> list[Block]:
    blocks = _rst_blocks(doc.source, doc.lines, doc.line - 1 if doc.line else 0)
    for block in blocks:
        block.object_id, block.module = doc.object_id, doc.module
        if not doc.line:
            block.line = 0
    return blocks


def _rst_blocks(path: Path, lines: list[str], offset: int = 0) -> list[Block]:
    """The blocks of ``lines`` (read from ``path``, from its line
    ``offset + 1`` on)."""
    blocks = []
    i = 0
    while i < len(lines):
        line = lines[i]
        auto = directive(lines, i)
        if auto:
            kind, name, options, _ = auto
            for doc in documented(kind, name, options):
                blocks += _docstring_blocks(doc)
        if re.match(r"\s*>>> ", line) and (i == 0 or not lines[i - 1].strip()):
            # A doctest block: the paragraph that starts with ">>>".
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            block = Block(path, offset + i + 1, "pycon", textwrap.dedent("\n".join(lines[i:end])))
            block.code += "\n"
            _marker(lines, i, block)
            blocks.append(block)
            i = end
            continue
        m = DIRECTIVE.match(line)
        if m:
            indent = len(m.group(1))
            block = Block(path, offset + i + 1, m.group(3) or "text", "")
            if m.group(2) == "literalinclude":
                block.include = m.group(3)
                block.language = "python" if block.include.endswith(".py") else "text"
                options = _options(lines, i + 1, indent)
                block.code = (path.parent / block.include).read_text(encoding="utf-8")
                if "pyobject" in options:
                    block.language = "python"
                    block.code = f"# {options['pyobject']} of {block.include}\n"
            else:
                block.code, _ = _body(lines, i + 1, indent)
            _marker(lines, i, block)
            blocks.append(block)
            _, i = _body(lines, i + 1, indent)
            continue
        if line.rstrip().endswith("::") and not OTHER_DIRECTIVE.match(line):
            indent = _indent(line)
            start = i
            # Back to the paragraph's start (a list item's marker line at most).
            while (
                start > 0
                and lines[start - 1].strip()
                and not re.match(r"\s*([-*]|\d+\.) ", lines[start])
            ):
                start -= 1
            block = Block(path, offset + i + 1, "text", "")
            block.code, after = _body(lines, i + 1, indent)
            _marker(lines, start, block)
            blocks.append(block)
            i = after
            continue
        i += 1
    return blocks


def markdown_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if m:
            end = i + 1
            while not lines[end].startswith("```"):
                end += 1
            block = Block(path, i + 1, m.group(1) or "text", "\n".join(lines[i + 1 : end]) + "\n")
            _marker(lines, i, block)
            blocks.append(block)
            i = end + 1
            continue
        i += 1
    return blocks


def sources() -> list[Path]:
    """The docs' pages and the README (docstrings come in through their
    ``automodule``)."""
    return sorted(DOCS.glob("*.rst")) + [ROOT / "README.md"]


def all_blocks() -> list[Block]:
    """Every block of every source, in order."""
    blocks: list[Block] = []
    for path in sources():
        blocks += markdown_blocks(path) if path.suffix == ".md" else rst_blocks(path)
    return blocks


def examples() -> dict[str, Block]:
    """The marked examples, by name."""
    return {b.name: b for b in all_blocks() if b.name}


# -- running them ---------------------------------------------------------------

#: The test secret the examples' processes get as SESSION_SECRET.
SECRET = "docs-examples-secret-4TqLx9VbN2mZr7KcW0pYs3HdJ6fGa8Ue"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of an example: this one without any SESSION_* or
    TEST_SESSION_* variable, with the test secret, and ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SESSION_", "TEST_SESSION_", "PYTEST_"))
    }
    env["SESSION_SECRET"] = SECRET
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def code_of(name: str, given: dict[str, str], blocks: dict[str, Block] | None = None) -> str:
    """What an example runs: the code of the names it is given, then of the
    examples it extends that are not files of their own, then its own."""
    blocks = blocks or examples()
    block = blocks[name]
    parts = [given[g] for g in block.given]
    parts += [code_of(o, given, blocks) for o in block.extends if not blocks[o].file]
    return "".join(parts) + block.code


def write_files(name: str, directory: Path, given: dict[str, str]) -> None:
    """Write the examples ``name`` extends that are files (``module FILE``)."""
    blocks = examples()
    for other in blocks[name].extends:
        write_files(other, directory, given)
        if blocks[other].file:
            (directory / blocks[other].file).write_text(code_of(other, given), encoding="utf-8")


async def run_module(name: str, given: dict[str, str], **namespace: Any) -> dict[str, Any]:
    """Execute an example as a module (top-level ``await`` allowed) and
    return its namespace."""
    block = examples()[name]
    code = compile(
        code_of(name, given),
        f"<{block.where} example {name}>",
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )
    ns: dict[str, Any] = {"__name__": f"docs_example_{name.replace('-', '_')}", **namespace}
    result = eval(code, ns)  # noqa: S307 - the docs' own code, run on purpose
    if inspect.iscoroutine(result):
        await result
    return ns


def run_pytest(
    name: str, directory: Path, given: dict[str, str], env: dict[str, str], *args: str
) -> str:
    """Run an example as a pytest file in ``directory``; return pytest's
    output after checking that every test in it passed."""
    block = examples()[name]
    write_files(name, directory, given)
    code = code_of(name, given)
    path = directory / f"test_{name.replace('-', '_')}.py"
    path.write_text(code, encoding="utf-8")
    tests = [
        node.name
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, path.name],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{block.where}: {output}"
    summary = output.strip().splitlines()[-1]
    passed = re.match(r"=* ?(\d+) passed(, \d+ warnings?)? in ", summary)
    assert passed and int(passed.group(1)) >= max(len(tests), 1), f"{block.where}: {output}"
    return output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running_program(
    name: str, directory: Path, given: dict[str, str], env: dict[str, str]
) -> AsyncIterator[str]:
    """Start a ``program`` example (its port 8888 made a free one) and yield
    its base URL once it answers; stop it at the end and check that it
    logged no traceback."""
    block = examples()[name]
    port = free_port()
    code = code_of(name, given)
    assert "8888" in code, f"{block.where}: a program example listens on 8888"
    path = directory / f"{name.replace('-', '_')}.py"
    path.write_text(code.replace("8888", str(port)), encoding="utf-8")
    log = directory / f"{path.stem}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, path.name], cwd=directory, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"{block.where}: exited: {log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"{block.where}: never listened"
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    assert "Traceback" not in log.read_text(), f"{block.where}: {log.read_text()}"


def run_console(name: str, directory: Path, env: dict[str, str]) -> None:
    """Run each ``$ command`` of a console example in ``directory``; where
    the example shows output, the command must print exactly that (spaces
    and line breaks aside; the directory shows as ``/srv/app``), else it must
    succeed."""
    block = examples()[name]
    steps: list[tuple[str, list[str]]] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip():
            steps[-1][1].append(line)
    assert steps, f"{block.where}: no $ command"
    for command, shown in steps:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = (result.stdout + result.stderr).replace(str(directory), "/srv/app")
        if shown:
            assert output.split() == " ".join(shown).split(), f"{block.where}: {output}"
        else:
            assert result.returncode == 0 and output.strip(), f"{block.where}: {output}"


def env_names(name: str) -> list[str]:
    """The variables an ``env`` example sets."""
    names = []
    for line in examples()[name].code.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", line), line
            names.append(line.split("=", 1)[0])
    return names


def include_names(name: str) -> tuple[Path, str | None]:
    """The file an ``include`` example shows, and the object it picks."""
    block = examples()[name]
    assert block.include is not None
    m = re.match(r"# (\S+) of ", block.code)
    return block.source.parent / block.include, m.group(1) if m else None


if __name__ == "__main__":  # list them: python tests/docs_examples.py
    for b in all_blocks():
        label = b.problem or (f"skip: {b.skip}" if b.skip else f"{b.name} {b.kind}")
        print(f"{b.where:32} {b.language:12} {label}")
