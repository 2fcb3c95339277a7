"""Every relative link of README.md, CONTRIBUTING.md, CHANGELOG.md and docs/*.md points at a file that exists, and
every #anchor at a heading of that file (as GitHub makes anchors of headings)."""

import glob
import os
import re

from helpers.servers import REPO_ROOT

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def pages():
    names = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"] + sorted(
        os.path.relpath(path, REPO_ROOT) for path in glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")))
    return [name for name in names if os.path.exists(os.path.join(REPO_ROOT, name))]


def without_code(text):
    """The text outside fenced code blocks and inline code, where a link is a link."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path):
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens, a repeated
    heading numbered."""
    with open(path, encoding="utf-8") as handle:
        text = re.sub(r"^```.*?^```", "", handle.read(), flags=re.M | re.S)
    seen, found = {}, set()
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else "{}-{}".format(slug, count))
    return found


def test_every_relative_link_resolves():
    broken = []
    for page in pages():
        path = os.path.join(REPO_ROOT, page)
        with open(path, encoding="utf-8") as handle:
            text = without_code(handle.read())
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:: not this checkout's
            file_part, _, anchor = target.partition("#")
            linked = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(linked):
                broken.append("{}: {} (no such file)".format(page, target))
            elif anchor and linked.endswith(".md") and anchor not in anchors(linked):
                broken.append("{}: {} (no such heading)".format(page, target))
    assert broken == [], "\n".join(broken)


def test_the_anchors_are_github_s():
    """The slugs this test computes, on headings the docs have."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as handle:
        handle.write("# The publisher's gate: one owner\n## Destinations: `releasekit.yaml`\n## Figures\n## Figures\n")
    try:
        assert anchors(handle.name) == {"the-publishers-gate-one-owner", "destinations-releasekityaml", "figures",
                                        "figures-1"}
    finally:
        os.unlink(handle.name)
