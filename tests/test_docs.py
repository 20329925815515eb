"""The README and docs/*.md: every relative link leads somewhere, and the README stays one page."""
import re
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
DOCUMENTS = [PROJECT_DIR / "README.md", *sorted((PROJECT_DIR / "docs").glob("*.md"))]
README_MAX_LINES = 250

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
MARKDOWN_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, where links and headings are what they look like."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        lines.append("" if fenced else line)
    return lines


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text in lower case, punctuation other
    than `-` and `_` removed (letters and digits of any script kept, Chinese too), each
    space a `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text, not its target
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor the headings of `path` produce; a repeated one gets -1, -2, … as on GitHub."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = anchor(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image in `path`, code left out."""
    found = []
    for number, line in enumerate(prose_lines(path.read_text(encoding="utf-8")), start=1):
        line = INLINE_CODE.sub("", line)
        found += [(number, target) for target in MARKDOWN_LINK.findall(line)]
        found += [(number, target) for target in HTML_LINK.findall(line)]
    return found


def broken_links(path: Path, root: Path = PROJECT_DIR) -> list[str]:
    """What is wrong with each relative link of `path`: a missing file, or an anchor no heading makes."""
    problems = []
    for number, target in links(path):
        if EXTERNAL.match(target):
            continue
        file_part, _, fragment = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not destination.exists():
            problems.append(f"{where}: no such file")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            problems.append(f"{where}: no heading makes #{fragment}")
    return problems


def test_anchors_are_made_as_github_makes_them():
    assert anchor("Retry safety: `Idempotency-Key`") == "retry-safety-idempotency-key"
    assert anchor("Who is logged: `operator` and `on_behalf_of`") == "who-is-logged-operator-and-on_behalf_of"
    assert anchor("Production: MySQL/MariaDB + gunicorn + Nginx") == "production-mysqlmariadb--gunicorn--nginx"
    assert anchor("库存管理服务 · Inventory service") == "库存管理服务--inventory-service"


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n\n[ok](#top) [gone](b.md) [bad](a.md#nowhere)\n"
                                   "```\n[in code](c.md)\n```\n`[inline](d.md)`\n", encoding="utf-8")
    assert broken_links(tmp_path / "a.md", tmp_path) == [
        "a.md:3: b.md: no such file",
        "a.md:3: a.md#nowhere: no heading makes #nowhere",
    ]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(PROJECT_DIR)))
def test_every_relative_link_resolves(path):
    problems = broken_links(path)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_readme_is_one_page():
    lines = len((PROJECT_DIR / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"
