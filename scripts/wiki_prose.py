#!/usr/bin/env python3
"""The running prose of a MediaWiki XML dump, one .txt per article (used by fetch-corpora.sh).

Usage: wiki_prose.py DUMP.xml[.bz2] OUT_FOLDER [HELD_OUT_TEXT ...]

Keeps articles (namespace 0) that are not redirects or disambiguation pages. Drops comments,
references, templates, tables, files, categories, math and the closing sections (See also,
References, External links, ...); links become their label, emphasis marks and list bullets go,
headings stay as lines of their own, HTML entities are decoded.

HELD_OUT_TEXT files (the WikiText-2 test split) are texts the corpus must not contain: an article
whose title is one of theirs is left out, and so is any paragraph sharing a run of 12 words with
them (compared lowercased, letters and digits only, so WikiText's " @-@ " spacing does not hide a
match). The script prints how many of each it dropped.
"""
import bz2
import html
import pathlib
import re
import sys
import xml.etree.ElementTree as ElementTree

CLOSING_SECTIONS = {"see also", "references", "external links", "further reading", "notes",
                    "bibliography", "footnotes", "sources", "citations", "notes and references"}
SHINGLE = 12


def strip_nested(text, opening, closing, start=None):
    """Removes every span from `start` (default: `opening`) to the `closing` that balances it; inside a
    span each `opening` nests one level deeper."""
    start = start or opening
    out, depth, i = [], 0, 0
    while i < len(text):
        entry = opening if depth else start
        if text.startswith(entry, i):
            depth, i = depth + 1, i + len(entry)
        elif depth and text.startswith(closing, i):
            depth, i = depth - 1, i + len(closing)
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)


def link_label(match):
    target, _, label = match.group(1).partition("|")
    if re.match(r"(?i)(file|image|category|media|[a-z]{2,3}(-[a-z]+)?):", target):
        return ""
    return label or target


def plain(markup):
    text = re.sub(r"<!--.*?-->", "", markup, flags=re.S)
    text = re.sub(r"<ref[^>]*/>", "", text)
    text = re.sub(r"<ref[^>]*>.*?</ref>", "", text, flags=re.S)
    text = re.sub(r"<(math|gallery|timeline|imagemap|score|syntaxhighlight|source)[^>]*>.*?</\1>", "", text, flags=re.S)
    text = strip_nested(text, "{{", "}}")
    text = strip_nested(text, "{|", "|}")
    # Files and images carry links inside their captions: remove them whole, brackets balanced.
    text = strip_nested(re.sub(r"\[\[(?i:file|image):", "\x00", text), "[[", "]]", start="\x00")
    text = re.sub(r"\[\[([^\[\]]*)\]\]", link_label, text)
    text = re.sub(r"\[(?:https?|ftp)://\S+ ([^\]]*)\]", r"\1", text)
    text = re.sub(r"\[?(?:https?|ftp)://\S+\]?", "", text)
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text).replace("\u00a0", " ")
    # What removed templates leave behind: "Albedo () or", "1760 , the".
    text = re.sub(r"\(\s*[;,]?\s*\)", "", text)
    text = re.sub(r" +([,.;:])", r"\1", text)

    lines, closing = [], False
    for line in text.splitlines():
        line = line.strip()
        heading = re.fullmatch(r"(=+)\s*(.*?)\s*\1", line)
        if heading:
            closing = heading.group(2).lower() in CLOSING_SECTIONS
            line = heading.group(2)
        if closing:
            continue
        line = re.sub(r"^[*#:;]+\s*", "", line)
        line = " ".join(line.split())
        # What the markup leaves of a template or table that did not close.
        if not line or "{{" in line or "}}" in line or line.startswith("|") or line.startswith("!"):
            if lines and lines[-1]:
                lines.append("")
            continue
        lines.append(line)
    return "\n".join(lines).strip() + "\n"


def words(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def shingles(text):
    w = words(text)
    return {" ".join(w[i:i + SHINGLE]) for i in range(len(w) - SHINGLE + 1)}


def held_out(paths):
    titles, grams = set(), set()
    for path in paths:
        text = pathlib.Path(path).read_text(encoding="utf-8")
        for match in re.finditer(r"^ = ([^=].*?) = \r?$", text, flags=re.M):
            titles.add(" ".join(words(match.group(1))))
        grams |= shingles(text)
    return titles, grams


def pages(dump):
    opener = bz2.open if str(dump).endswith(".bz2") else open
    with opener(dump, "rb") as stream:
        for _, element in ElementTree.iterparse(stream):
            if element.tag.endswith("}page"):
                fields = {child.tag.rsplit("}", 1)[-1]: child for child in element.iter()}
                yield fields["title"].text or "", fields["ns"].text, fields["text"].text or ""
                element.clear()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    dump, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    try:
        titles, grams = held_out(sys.argv[3:])
    except (OSError, UnicodeDecodeError) as error:
        sys.exit(f"wiki_prose: cannot read a held-out text ({error}); pass the WikiText-2 test split "
                 "as UTF-8 text (Pipelines/data/wikitext-2-raw/wiki.test.raw)")
    out.mkdir(parents=True, exist_ok=True)
    try:
        kept, same_title, overlapping = write_articles(dump, out, titles, grams)
    except (OSError, EOFError, ElementTree.ParseError, KeyError, AttributeError) as error:
        sys.exit(f"wiki_prose: {dump} is not a readable MediaWiki XML dump ({type(error).__name__}: {error}); "
                 "scripts/fetch-corpora.sh fetches the expected one and checks its sha256")
    print(f"wiki_prose: {kept} articles; left out {same_title} with a held-out title and "
          f"{overlapping} paragraphs sharing {SHINGLE} words with held-out text")


def write_articles(dump, out, titles, grams):
    """Writes each kept article of `dump` to out/NAME.txt; returns (kept, left out by title, paragraphs
    left out for overlap)."""
    kept = same_title = overlapping = 0
    for title, namespace, markup in pages(dump):
        if namespace != "0" or markup.lstrip().lower().startswith("#redirect") or "(disambiguation)" in title:
            continue
        if re.search(r"\{\{\s*(disambig|dab|hndis|geodis)", markup, flags=re.I):
            continue
        if " ".join(words(title)) in titles:
            same_title += 1
            continue
        paragraphs = plain(markup).split("\n\n")
        clean = [p for p in paragraphs if not (shingles(p) & grams)]
        overlapping += len(paragraphs) - len(clean)
        body = "\n\n".join(clean).strip()
        if len(body.split()) < 50:
            continue
        name = re.sub(r"[^A-Za-z0-9]+", "_", title).strip("_")
        (out / f"{name}.txt").write_text(body + "\n", encoding="utf-8")
        kept += 1
    return kept, same_title, overlapping


if __name__ == "__main__":
    main()
