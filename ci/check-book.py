#!/usr/bin/env python3
"""Checks of the book that mdBook does not make.

sources: every {{#include}} / {{#rustdoc_include}} names an existing file, every named ANCHOR
         exists in it, is balanced and is not empty; every ANCHOR in the chapters and the
         library is included by some page (an anchor nothing shows is a listing the book
         lost), but the assignments' `solution-` regions; every figure a page shows exists;
         no included listing shows a solution marker; every author-year a page cites is in
         references.md; the figures keep to their budget (8 MB in all, 600 KB each).
output:  no formula was left unrendered; every image and stylesheet a page links exists;
         KaTeX's fonts are served by the book.
"""
import pathlib
import re
import sys

BOOK = pathlib.Path("book")
INCLUDE = re.compile(r"\{\{#(?:include|rustdoc_include)\s+([^}\s:]+)(?::([^}\s]+))?\s*\}\}")
errors = []


def check_sources():
    included = set()
    for md in sorted(BOOK.rglob("*.md")):
        text = md.read_text()
        for m in INCLUDE.finditer(text):
            path, anchor = (md.parent / m.group(1)).resolve(), m.group(2)
            included.add((path, anchor))
            if not path.is_file():
                errors.append(f"{md}: include of missing file {m.group(1)}")
                continue
            if anchor and not re.fullmatch(r"[0-9:]*", anchor):
                body = path.read_text()
                start, end = f"ANCHOR: {anchor}\n", f"ANCHOR_END: {anchor}\n"
                if body.count(start) != 1 or body.count(end) != 1:
                    errors.append(f"{md}: anchor '{anchor}' is missing or not balanced in {m.group(1)}")
                    continue
                inner = body.split(start, 1)[1].split(end, 1)[0]
                lines = [l for l in inner.splitlines()[:-1] if l.strip()]
                if not lines:
                    errors.append(f"{md}: anchor '{anchor}' in {m.group(1)} is empty")
        for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', text) + re.findall(r"!\[[^\]]*\]\(([^)\s]+)", text):
            if "://" in src:
                continue
            f = md.parent / src
            if not f.is_file() or f.stat().st_size == 0:
                errors.append(f"{md}: figure {src} is missing or empty")


    for root in ("chapters", "crates/vision-interp/src", "crates/vision-interp-zoo/src", "crates/vision-interp-kernels/src"):
        for rs in sorted(pathlib.Path(root).rglob("*.rs")):
            for name in re.findall(r"// ANCHOR: (\S+)", rs.read_text()):
                # Solution regions of the assignments are anchors so that mdBook hides their
                # markers; no page includes them by name.
                if name.startswith("solution-"):
                    continue
                if (rs.resolve(), name) not in included:
                    errors.append(f"{rs}: anchor '{name}' is included by no page")


def check_references():
    """Every entry of references.md is cited in some other page (first author and year)."""
    refs = (BOOK / "references.md").read_text()
    text = "".join(md.read_text() for md in BOOK.rglob("*.md") if md.name != "references.md")
    for author, year in re.findall(r"^- ([A-Z][^\s,]+), .*?\((\d{4})\)", refs, re.M | re.S):
        if not re.search(re.escape(author) + r"[^)]{0,80}?" + year, text, re.S):
            errors.append(f"book/references.md: {author} ({year}) is cited on no page")


CITE_YEAR = re.compile(
    r"\b([A-Z][\w'À-ſ-]+)(?: et al\.|,? (?:[A-Z][\wÀ-ſ-]+,? )*(?:and|&) [A-Z][\wÀ-ſ-]+(?:'s)?)"
    r"[^()\n.;]{0,60}?[ (]((?:19|20)\d\d)\b")
# Capitalised words that the patterns take for a first author ("OpenAI Microscope and Distill's").
NOT_AUTHORS = {"Microscope"}
CITE_AUTHOR = re.compile(r"\b([A-Z][\wÀ-ſ-]+)(?: et al\.| (?:and|&) [A-Z][\wÀ-ſ-]+'s\b)")


def check_citations():
    """Every author-year a page cites (`Olah et al., 2017`, `Gatys, Ecker and Bethge (2016)`,
    `Mahendran & Vedaldi 2015`) is in references.md, and so is every first author named with
    `et al.` or `X and Y's` without a year."""
    refs = (BOOK / "references.md").read_text()
    listed = set(re.findall(r"^- ([A-Z][^\s,]+), .*?\((\d{4})\)", refs, re.M | re.S))
    authors = {a for a, _ in listed}
    for md in sorted(BOOK.rglob("*.md")):
        if md.name == "references.md":
            continue
        text = re.sub(r"\s+", " ", md.read_text())
        for author, year in CITE_YEAR.findall(text):
            if author in NOT_AUTHORS:
                continue
            if author in authors and (author, year) not in listed:
                errors.append(f"{md}: cites {author} ({year}), which references.md lacks")
            elif author not in authors:
                errors.append(f"{md}: cites {author} ({year}), whom references.md lacks")
        for author in CITE_AUTHOR.findall(text):
            if author not in authors and author not in NOT_AUTHORS:
                errors.append(f"{md}: cites {author}, whom references.md lacks")


def check_figure_budget():
    """The figures together stay under 8 MB, and each under 600 KB (CONTRIBUTING.md)."""
    files = [f for f in (BOOK / "figures").rglob("*") if f.is_file()]
    total = sum(f.stat().st_size for f in files)
    if total > 8_000_000:
        errors.append(f"book/figures: {total / 1e6:.1f} MB, over the budget of 8 MB")
    for f in files:
        if f.stat().st_size > 600_000:
            errors.append(f"{f}: {f.stat().st_size // 1000} KB, over the budget of 600 KB for one figure")
    print(f"figures: {len(files)} files, {total / 1e6:.2f} MB of 8 MB")


def check_output(out):
    out = pathlib.Path(out)
    pages = [p for p in out.rglob("*.html") if p.name not in ("print.html", "toc.html", "404.html")]
    if not pages:
        errors.append(f"{out}: no pages")
    strip = re.compile(r"<(pre|code|annotation|script|style)\b.*?</\1>", re.S)
    for page in pages:
        html = page.read_text()
        text = strip.sub("", html)
        if "$" in text:
            at = text.index("$")
            errors.append(f"{page}: unrendered math near: {text[max(0, at - 60):at + 60]!r}")
        # mdBook drops anchor lines from an included listing; one that shows means a listing
        # included a file whole (the instructors' appendix explains the markers, so it may).
        if page.name != "appendix-assignments.html" and re.search(r"ANCHOR(_END)?:", html):
            errors.append(f"{page}: a listing shows an ANCHOR marker")
        for ref in re.findall(r'(?:src|href)="([^"#?]+\.(?:png|jpg|svg|css))"', html):
            if "://" not in ref and not (page.parent / ref).resolve().is_file():
                errors.append(f"{page}: link to missing {ref}")
    css = out / "katex" / "katex.min.css"
    if not css.is_file():
        errors.append("KaTeX's stylesheet is not served by the book")
    else:
        for font in set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css.read_text())):
            if not (css.parent / font).is_file():
                errors.append(f"KaTeX font {font} is not served by the book")
    print(f"checked {len(pages)} pages")


if sys.argv[1] == "sources":
    check_references()
    check_citations()
    check_figure_budget()
    check_sources()
else:
    check_output(sys.argv[2])
for e in errors:
    print("error:", e)
sys.exit(1 if errors else 0)
