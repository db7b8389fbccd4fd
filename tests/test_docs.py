"""The documentation stands alone and its examples run.

- Every relative link (and image) in every Markdown file of the repository points to an
  existing file inside the repository, and a link to a heading of a Markdown file
  (``file.md#anchor``) names a heading that exists (GitHub's anchors). Links to web
  pages (any ``scheme:``) and links to an anchor of the same page (``#anchor``) are not
  checked; neither is anything inside code (fenced blocks, inline code).
- Every ```python block of README.md runs: each in a fresh namespace, in the order of
  the README, in one temporary working directory that holds a copy of ``runs/`` (the
  README's examples are written for the repository root, where ``runs/NAME.toml``
  exists). A block is skipped only when its first line is a marker comment
  ``# (not run: REASON)`` (e.g. one that needs a dask cluster at ``tcp://HOST:8786``);
  the reason is shown in the test report. These tests are marked ``slow`` (about a
  minute of CPU in all: each block compiles its own solver programs).
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOT_RUN = "# (not run:"

# folders that are not part of the repository's documentation (environments, build and
# run outputs, caches)
_SKIP_DIRS = {"build", "dist", "node_modules", "output", "__pycache__"}


# --------------------------------------------------------------------------- Markdown

_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def _strip_code(text: str) -> str:
    """The text with code blocks blanked (line numbers kept) and inline code removed.

    Code blocks: fenced ones, and lines indented by 4 or more spaces after a blank line
    (inside a list such a line may be a paragraph instead; it is then not checked)."""
    out, fence, indented, prev_blank = [], None, False, True
    for line in text.splitlines():
        m = _FENCE.match(line)
        blank = not line.strip()
        if fence is None and m:
            fence = m.group(1)
            out.append("")
        elif fence is not None:
            if line.strip().startswith(fence):
                fence = None
            out.append("")
        elif not blank and re.match(r"^( {4,}|\t)", line) and (prev_blank or indented):
            indented = True
            out.append("")
        else:
            indented = indented and blank
            out.append(re.sub(r"`+[^`]*`+", "", line))
        prev_blank = blank
    return "\n".join(out)


_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]+(?:\([^()\s]*\)[^()\s]*)*)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
_REFERENCE_DEF = re.compile(
    r"^ {0,3}\[[^\]]+\]:[ \t]*(<[^>]*>|\S+)(?:[ \t]+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?[ \t]*$",
    re.M,
)
_HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*\"([^\"]*)\"", re.I)


def markdown_links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link, image and reference definition outside code."""
    body = _strip_code(text)
    found = []
    for pattern in (_INLINE_LINK, _REFERENCE_DEF, _HTML_LINK):
        for m in pattern.finditer(body):
            target = m.group(1).strip()
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1].strip()
            found.append((body.count("\n", 0, m.start()) + 1, target))
    return sorted(found)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: rendered text, lower case, punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links -> their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)  # _emphasis_, not snake_case
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def markdown_anchors(text: str) -> set[str]:
    """The anchors a Markdown file defines: its ATX headings (with GitHub's -1, -2 ...
    for repeated ones) and explicit ``<a id=...>`` / ``name=...``."""
    body = _strip_code(text)
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for m in re.finditer(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", body, re.M):
        slug = _slug(m.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    anchors.update(re.findall(r"<a\b[^>]*?\b(?:id|name)\s*=\s*\"([^\"]+)\"", text, re.I))
    return anchors


def link_problems(md_file: Path, root: Path) -> list[str]:
    """What is wrong with the relative links of `md_file` (empty when nothing is)."""
    root = root.resolve()
    text = md_file.read_text(encoding="utf-8")
    problems = []
    for line, target in markdown_links(text):
        where = f"{md_file.relative_to(root)}:{line}: {target!r}"
        if not target or target.startswith("#"):
            continue  # an anchor of the same page
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target) or target.startswith("//"):
            continue  # http(s), mailto, ...: a web address
        path_part, _, anchor = target.partition("#")
        path_part = urllib.parse.unquote(path_part.split("?", 1)[0])
        if os.path.isabs(path_part):
            problems.append(f"{where} is an absolute path (a clone does not have it)")
            continue
        resolved = (md_file.parent / path_part).resolve()
        if not resolved.is_relative_to(root):
            problems.append(f"{where} points outside the repository (to {resolved})")
            continue
        if not resolved.exists():
            problems.append(f"{where} points to a missing file")
            continue
        if anchor and resolved.is_file() and resolved.suffix.lower() == ".md":
            anchor = urllib.parse.unquote(anchor)
            if anchor not in markdown_anchors(resolved.read_text(encoding="utf-8")):
                problems.append(
                    f"{where}: {resolved.relative_to(root)} has no heading with anchor "
                    f"#{anchor}"
                )
    return problems


def repository_markdown_files(root: Path = ROOT) -> list[Path]:
    """Every Markdown file of the repository (hidden folders, environments, egg-info,
    build and run outputs left out)."""
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and d not in _SKIP_DIRS and not d.endswith(".egg-info")
        )
        files.extend(Path(folder) / n for n in sorted(names) if n.lower().endswith(".md"))
    return files


# --------------------------------------------------------------------------- links


def test_the_documents_the_readme_promises_exist():
    files = {p.relative_to(ROOT).as_posix() for p in repository_markdown_files()}
    for name in ("README.md", "runs/README.md", "benchmarks/README.md", "docs/physics.md"):
        assert name in files


@pytest.mark.parametrize(
    "md_file",
    repository_markdown_files(),
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_relative_links_stay_inside_the_repository_and_exist(md_file):
    problems = link_problems(md_file, ROOT)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_physics_document_keeps_the_section_numbers_the_code_cites():
    anchors = markdown_anchors((ROOT / "docs" / "physics.md").read_text(encoding="utf-8"))
    numbers = {int(m.group(1)) for a in anchors if (m := re.match(r"(\d+)-", a))}
    # 1-10: the model; 11-13: conductivity and resonators, the readout drive, solver
    # variables (cited by kinetics._conductivity, _resonator, _baths and the tests)
    assert set(range(1, 14)) <= numbers


def test_the_link_checker_catches_what_it_should(tmp_path):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (tmp_path / "outside.md").write_text("# Outside\n")
    (repo / "docs" / "b.md").write_text("# Title\n## 2. A section (x)\n## Title\n")
    (repo / "figure.png").write_bytes(b"")
    up = ".." + "/"  # (spelled apart: the repository's own link scans must not flag these)
    (repo / "a.md").write_text(
        "[ok](docs/b.md) ![img](figure.png) [anchor](docs/b.md#2-a-section-x)\n"
        "[repeat](docs/b.md#title-1) [web](https://example.org/x.md) [self](#nowhere)\n"
        f"[out]({up}outside.md)\n"
        "[missing](docs/missing.md)\n"
        "[bad anchor](docs/b.md#3-no-such-section)\n"
        "[abs](/etc/passwd)\n"
        f"`[code]({up}in-code.md)`\n"
        f"```\n[fenced]({up}fenced.md)\n```\n"
        f"[ref]: {up}ref.md\n"
        f"\n    [indented code]({up}indented.md)\n"
    )
    problems = link_problems(repo / "a.md", repo)
    assert [p.split(":")[1] for p in problems] == ["3", "4", "5", "6", "11"]
    assert "outside the repository" in problems[0]
    assert "missing file" in problems[1]
    assert "#3-no-such-section" in problems[2]
    assert "absolute path" in problems[3]
    assert "outside the repository" in problems[4]


# --------------------------------------------------------------------------- README code


def readme_python_blocks(text: str) -> list[tuple[int, str]]:
    """(line of the opening fence, code) of every ```python block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if re.match(r"^ {0,3}```\s*python\s*$", lines[i]):
            start, i = i + 1, i + 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                i += 1
            blocks.append((start, "\n".join(lines[start:i]) + "\n"))
        i += 1
    return blocks


BLOCKS = readme_python_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_python_examples_and_few_skips():
    assert BLOCKS
    skipped = [line for line, code in BLOCKS if code.lstrip().startswith(NOT_RUN)]
    assert len(skipped) <= 1, f"README blocks marked not run (lines {skipped}): keep them rare"


@pytest.fixture(scope="module")
def readme_workdir(tmp_path_factory):
    """A temporary working directory laid out like the repository root for the examples:
    a copy of the study files in runs/ (no outputs)."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(
        ROOT / "runs", work / "runs", ignore=shutil.ignore_patterns("output", "*.nc", "*.png")
    )
    return work


# slow: the blocks compile a steady-state sweep, an evolution and a quick study (~60 s of CPU
# in all; 150 s on 2 busy cores)
@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"README.md:{b[0]}" for b in BLOCKS])
def test_readme_python_block_runs(index, readme_workdir, monkeypatch):
    import matplotlib.pyplot as plt

    line, code = BLOCKS[index]
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    if first.startswith(NOT_RUN):
        pytest.skip(f"README.md:{line} is marked {first}")
    monkeypatch.chdir(readme_workdir)
    try:
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
    finally:
        plt.close("all")


def _seconds(text: str) -> float:
    m = re.fullmatch(r"~?\s*([\d.]+)\s*(s|min)", text.strip())
    assert m, f"not a wall time: {text!r}"
    return float(m.group(1)) * (60.0 if m.group(2) == "min" else 1.0)


def test_wall_times_agree_between_the_readme_and_runs_readme():
    # the gallery's "(..., 35 s)" after `runs/NAME.toml` against runs/README.md's table
    readme = (ROOT / "README.md").read_text()
    table = (ROOT / "runs" / "README.md").read_text()
    stated = {}
    for name, paren in re.findall(r"`runs/(\w+)\.toml` \(([^)]*)\)", readme):
        times = re.findall(r"(~?\s*[\d.]+\s*(?:s|min))\b", paren)
        if times:
            stated[name] = _seconds(times[0])  # the full run (a --quick time may follow)
    listed = {
        name: _seconds(cell)
        for name, cell in re.findall(r"^\| `(\w+)\.toml` \|.*\| ([^|]+) \|\s*$", table, re.M)
    }
    common = sorted(set(stated) & set(listed))
    assert len(common) >= 6, (stated, listed)
    for name in common:
        assert stated[name] == listed[name], (name, stated[name], listed[name])
    # the Set-up's default study (fig1a) is the same study
    setup = re.search(r"fig1a\.png`, about (\d+) s", readme)
    assert setup and float(setup.group(1)) == listed["fig1a"]
