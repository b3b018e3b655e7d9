"""The documentation points at things that exist, and the README stays one page.

For README.md and every docs/*.md:
- every relative link (and image) resolves to a file or directory in the repository, and a
  `#anchor` into a Markdown file names one of that file's headings (GitHub's slug rules);
- every command in a ```bash block that runs something of this repository names something that
  exists: `python -m model_creation <stage>` a real stage with real flags and presets,
  `python -m pkg.mod` / `python path.py` / `node path.mjs` / `path/script.sh` a real file,
  `pytest tests/...` a real test file, `make <target>` a target of the Makefile, `npm run <script>`
  a script of the package.json in the directory the block has `cd`-ed to.
Programs from elsewhere (curl, docker, pip, npm ci, ...) are not checked.

The checks read files only (the pipeline's Config classes are parsed, not imported), so they take
well under a second. The negative cases below feed synthetic Markdown to the same checkers, so a
checker that silently accepts everything fails.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_CHARS = 8000

FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SHELL_BLOCKS = {"bash", "sh", "shell"}


# --- Markdown structure ---------------------------------------------------------------------


def split_fences(text: str) -> tuple[list[tuple[int, str]], list[tuple[str, str]]]:
    """(prose lines with their numbers, [(info string, body)] of fenced code blocks)."""
    prose, blocks = [], []
    fence, info, body = None, "", []
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence, info, body = match.group(1), match.group(2).lower(), []
            else:
                prose.append((number, line))
        elif match and match.group(1) == fence and not match.group(2):
            blocks.append((info, "\n".join(body)))
            fence = None
        else:
            body.append(line)
    return prose, blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for _, line in split_fences(text)[0]:
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(text: str) -> list[tuple[int, str]]:
    found = []
    for number, line in split_fences(text)[0]:
        line = INLINE_CODE.sub("", line)
        found += [(number, m.group(1)) for m in LINK.finditer(line)]
        found += [(number, m.group(1)) for m in HTML_LINK.finditer(line)]
    return found


def link_problems(text: str, path: Path) -> list[str]:
    """A message for every relative link in `text` (a file at `path`) that points nowhere."""
    problems = []
    for number, target in links(text):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # http(s), mailto: not this test's business
        where = f"{path.name}:{number}: {target}"
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part.split("?")[0])
        resolved = (path.parent / file_part).resolve() if file_part else path
        if file_part and REPO not in resolved.parents and resolved != REPO:
            problems.append(f"{where}: leaves the repository")
            continue
        if file_part and not resolved.exists():
            problems.append(f"{where}: no such file or directory")
            continue
        if anchor and resolved.suffix == ".md":
            target_text = text if resolved == path else resolved.read_text(encoding="utf-8")
            if unquote(anchor).lower() not in anchors(target_text):
                problems.append(f"{where}: no heading with anchor #{anchor} in {resolved.name}")
    return problems


# --- What the repository offers ----------------------------------------------------------------


@cache
def make_targets() -> frozenset[str]:
    targets = set()
    for line in (REPO / "Makefile").read_text().splitlines():
        match = re.match(r"^([^\s#=:][^=:]*?)\s*::?(?!=)", line)
        if match:
            names = match.group(1).split()
            targets.update(t for t in names if "$" not in t and "%" not in t and not t.startswith("."))
    return frozenset(targets)


@cache
def pipeline_stages() -> tuple[str, ...]:
    tree = ast.parse((REPO / "model_creation" / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "STAGES" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("model_creation/__init__.py defines no STAGES")


def _module_tree(module: str) -> ast.Module:
    return ast.parse((REPO / Path(*module.split("."))).with_suffix(".py").read_text())


def _find_definition(module: str, name: str) -> tuple[str, ast.AST] | None:
    """The module-level class or assignment called `name`, following `from model_creation.x import`."""
    tree = _module_tree(module)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return module, node
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(getattr(t, "id", None) == name for t in targets):
                return module, node
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("model_creation"):
            if any(alias.name == name and alias.asname is None for alias in node.names):
                return _find_definition(node.module, name)
    return None


@cache
def stage_options(stage: str) -> tuple[frozenset[str], frozenset[str] | None]:
    """(the flags `python -m model_creation <stage>` accepts, its preset names or None)."""
    found = _find_definition(f"model_creation.{stage}", "Config")
    assert found, f"model_creation.{stage} has no Config"
    flags = {"help", "h"}
    for node in found[1].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            flag = node.target.id.replace("_", "-")
            flags.add(flag)
            if ast.unparse(node.annotation) == "bool":
                flags.add("no-" + flag)
    presets = None
    found = _find_definition(f"model_creation.{stage}", "PRESETS")
    if found and isinstance(found[1].value, ast.Dict):
        presets = frozenset(ast.literal_eval(key) for key in found[1].value.keys)
        flags.add("preset")
    return frozenset(flags), presets


def _in_repo_module(module: str) -> Path | None:
    """The file a dotted module of this repository lives in; None if it is not this repository's."""
    parts = module.split(".")
    if not ((REPO / parts[0]).is_dir() or (REPO / f"{parts[0]}.py").is_file()):
        return None
    base = REPO / Path(*parts)
    for candidate in (base.with_suffix(".py"), base / "__main__.py"):
        if candidate.is_file():
            return candidate
    return base  # does not exist: reported


# --- Commands in ```bash blocks ------------------------------------------------------------------


def _tokens(line: str) -> list[str]:
    """Shell words of one line (comments dropped, operators as their own tokens); ValueError while a quote is open."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def logical_lines(body: str):
    """Shell lines with continuations and multi-line quotes joined, split into tokens."""
    pending = ""
    for line in body.splitlines():
        if pending.endswith("\\"):
            pending = pending[:-1] + " " + line
        elif pending:
            pending += "\n" + line
        else:
            pending = line
        if pending.endswith("\\"):
            continue
        try:
            tokens = _tokens(pending)
        except ValueError:  # a quote still open: the next line continues it
            continue
        pending = ""
        yield tokens
    if pending:
        try:
            yield _tokens(pending.rstrip("\\"))
        except ValueError:
            yield None  # a quote that never closes


def simple_commands(tokens: list[str]):
    command = []
    for token in tokens:
        if token and set(token) <= set(";&|()"):
            if command:
                yield command
            command = []
        else:
            command.append(token)
    if command:
        yield command


WRAPPERS = {"nohup", "setsid", "time", "exec", "sudo", "env"}


def _strip_wrappers(command: list[str]) -> list[str]:
    while command:
        if ASSIGNMENT.match(command[0]):
            command = command[1:]
        elif command[0] in WRAPPERS:
            command = command[1:]
        elif command[0] == "nice":
            command = command[3:] if len(command) > 2 and command[1] == "-n" else command[1:]
        else:
            break
    # redirections: drop the operator and its target
    out, skip = [], False
    for token in command:
        if skip:
            skip = False
        elif token in {"<", ">", ">>", "2>", "&>"}:
            skip = True
        else:
            out.append(token)
    return out


def _check_model_creation(args: list[str], where: str) -> list[str]:
    stage = next((a for a in args if not a.startswith("-")), None)
    if stage is None:
        return [] if args else [f"{where}: python -m model_creation without a stage"]
    if stage not in pipeline_stages():
        return [f"{where}: no pipeline stage {stage!r} (stages: {', '.join(pipeline_stages())})"]
    flags, presets = stage_options(stage)
    problems = []
    for i, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        name = arg[2:].split("=")[0]
        if name not in flags:
            problems.append(f"{where}: stage {stage} has no flag --{name}")
        elif name == "preset" and presets is not None:
            value = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            if value not in presets:
                known = ", ".join(sorted(presets))
                problems.append(f"{where}: stage {stage} has no preset {value!r} (presets: {known})")
    return problems


def _check_path(path_text: str, cwd: Path, where: str) -> list[str]:
    path_text = path_text.split("::")[0]
    if "$" in path_text or "<" in path_text or "*" in path_text:
        return []
    return [] if (cwd / path_text).exists() else [f"{where}: {path_text} does not exist"]


def command_problems(body: str, name: str) -> list[str]:
    """A message for every command in a shell block that names a missing script, module, stage or target."""
    problems = []
    cwd: Path | None = REPO
    for tokens in logical_lines(body):
        if tokens is None:
            problems.append(f"{name}: a quote is never closed")
            continue
        for command in simple_commands(tokens):
            command = _strip_wrappers(command)
            if not command or cwd is None:
                continue
            program, args = command[0], command[1:]
            where = f"{name}: {' '.join(command)[:100]}"
            base = Path(program).name
            if program == "cd":
                target = args[0] if args else "~"
                if "$" in target or target.startswith("~"):
                    cwd = None
                elif not (cwd / target).is_dir():
                    problems.append(f"{where}: no directory {target}")
                    cwd = None
                else:
                    cwd = (cwd / target).resolve()
            elif re.fullmatch(r"python(3(\.\d+)?)?", base):
                if args[:1] == ["-m"] and len(args) > 1:
                    module = args[1]
                    file = _in_repo_module(module)
                    if file is not None and not file.is_file():
                        problems.append(f"{where}: no module {module} in the repository")
                    elif module == "model_creation":
                        problems += _check_model_creation(args[2:], where)
                elif args and args[0].endswith(".py"):
                    problems += _check_path(args[0], cwd, where)
            elif base == "node" and args and re.search(r"\.[cm]?js$", args[0]):
                problems += _check_path(args[0], cwd, where)
            elif base == "pytest":
                for arg in args:
                    if not arg.startswith("-") and (arg.endswith(".py") or "/" in arg.split("::")[0]):
                        problems += _check_path(arg, cwd, where)
            elif program == "make":
                for arg in args:
                    if not arg.startswith("-") and not ASSIGNMENT.match(arg) and arg not in make_targets():
                        problems.append(f"{where}: the Makefile has no target {arg!r}")
            elif program == "npm" and args and (args[0] == "test" or (args[0] == "run" and len(args) > 1)):
                script = "test" if args[0] == "test" else args[1]
                package = cwd / "package.json"
                scripts = json.loads(package.read_text()).get("scripts", {}) if package.is_file() else {}
                if script not in scripts:
                    problems.append(f"{where}: no npm script {script!r} in {package.relative_to(REPO)}")
            elif program.endswith((".sh", ".py")) or (
                "/" in program and not program.startswith(("/", "$", "~", ".venv/"))
            ):
                problems += _check_path(program, cwd, where)
            elif base == "gunicorn" and "-c" in args:
                problems += _check_path(args[args.index("-c") + 1], cwd, where)
    return problems


def doc_command_problems(text: str, name: str) -> list[str]:
    problems = []
    for info, body in split_fences(text)[1]:
        if info in SHELL_BLOCKS:
            problems += command_problems(body, name)
    return problems


# --- The checks on the real documentation ------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_at_something_that_exists(doc):
    assert link_problems(doc.read_text(encoding="utf-8"), doc) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_repository_command_in_bash_blocks_exists(doc):
    assert doc_command_problems(doc.read_text(encoding="utf-8"), doc.name) == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_section_markers_left(doc):
    assert "<!-- section" not in doc.read_text(encoding="utf-8")


def test_readme_is_one_page_starting_with_the_two_commands():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text) < README_MAX_CHARS, f"README.md is {len(text)} characters; move detail to docs/"
    before_first_section = text.split("\n## ", 1)[0]
    blocks = split_fences(before_first_section)[1]
    assert blocks, "README.md shows no command before its first section"
    info, body = blocks[0]
    commands = [line.split("#")[0].strip() for line in body.splitlines() if line.strip()]
    assert info == "bash" and commands[:2] == ["make run", "make test"], body
    assert text.index("```bash") < text.index("docs/screenshot.png")


def test_readme_links_every_docs_page():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    targets = {target.split("#")[0] for _, target in links(text)}
    missing = [f"docs/{p.name}" for p in DOCS[1:] if f"docs/{p.name}" not in targets]
    assert missing == [], f"README.md does not link {missing}"


# --- The checkers themselves can fail ---------------------------------------------------------

SYNTHETIC = REPO / "docs" / "synthetic.md"

BROKEN_LINKS = {
    "missing file": "See [the guide](no-such-page.md).",
    "missing image": "![shot](no-such-screenshot.png)",
    "missing anchor": "See [the API's errors](api.md#no-such-heading).",
    "missing anchor in this file": "# Title\n\nSee [below](#nowhere).",
    "outside the repository": "See [elsewhere](../../outside.md).",
    "missing html src": '<img src="missing.png">',
}


@pytest.mark.parametrize("markdown", BROKEN_LINKS.values(), ids=BROKEN_LINKS.keys())
def test_a_broken_link_is_reported(markdown):
    assert len(link_problems(markdown, SYNTHETIC)) == 1


def test_good_links_pass_and_code_is_not_read_as_links():
    markdown = (
        "# A title with `code`, punctuation: and (parens)\n\n"
        "[up](../README.md) [api](api.md#errors) [self](#a-title-with-code-punctuation-and-parens)\n"
        "[web](https://example.com/x) `[not a link](nowhere.md)`\n\n"
        "```\n[also not](nowhere.md)\n```\n"
    )
    assert link_problems(markdown, SYNTHETIC) == []


BROKEN_COMMANDS = {
    "unknown stage": "python -m model_creation trian --preset tiny",
    "unknown flag": "python -m model_creation train --preset tiny --no-such-flag 3",
    "unknown preset": "python -m model_creation train --preset enormous",
    "missing module": ".venv/bin/python -m bench.no_such_benchmark",
    "missing script": ".venv/bin/python bench/no_such.py --duration 20",
    "missing shell script": "model_creation/no_such_run.sh corpus.jsonl.gz",
    "missing make target": "make no-such-target CORPUS=x",
    "missing test file": ".venv/bin/pytest tests/test_no_such_thing.py -q",
    "missing npm script": "cd frontend && npm run no-such-script",
    "missing node script": "cd frontend && node e2e/no-such.mjs --runs 2",
    "continued line": "python -m model_creation dataset --inputs x \\\n  --no-such-flag 1",
    "unclosed quote": 'curl -d \'{"a": 1}',
    "after a quoted multi-line argument": "curl -d '{\"a\":\n 1}' http://x && make no-such-target",
}


@pytest.mark.parametrize("command", BROKEN_COMMANDS.values(), ids=BROKEN_COMMANDS.keys())
def test_a_command_naming_nothing_is_reported(command):
    markdown = f"Run:\n\n```bash\n{command}\n```\n"
    assert len(doc_command_problems(markdown, "synthetic.md")) == 1


def test_good_commands_pass_and_other_programs_are_not_checked():
    markdown = """```bash
make run    # serve
AUTOCOMPLETE_WORKERS=2 make test
nice -n 10 .venv/bin/python -m model_creation train --preset tiny --no-compile --dataset-dir runs/x
python -m model_creation scrape --help
.venv/bin/python -m bench.decode
.venv/bin/python -m bench.load --duration 20   # comment with an apostrophe's
model_creation/full_run.sh corpus.jsonl.gz
.venv/bin/pytest tests/test_docs_links.py::test_readme_links_every_docs_page -q
curl -s http://127.0.0.1:8000/generate -d '{"text": "x",
  "n": 1}'
pip install -e ".[train]"
cd frontend && npm ci && npm test && npm run build
```
```python
make_believe()
```
"""
    assert doc_command_problems(markdown, "synthetic.md") == []
