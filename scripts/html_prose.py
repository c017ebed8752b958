#!/usr/bin/env python3
"""The running prose of a folder of HTML pages, one .txt per page (used by fetch-corpora.sh).

Usage: html_prose.py HTML_FOLDER OUT_FOLDER
Drops <head>, <script>, <style> and <pre> (code listings and terminal sessions), and the handbook's
page navigation lines; block elements become line breaks, and runs of blank lines collapse to one.
Pages with under 50 words of prose (tables of contents, image indexes) are left out.
"""
import html.parser
import pathlib
import re
import sys

SKIPPED = {"head", "script", "style", "pre"}
BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "li", "br", "tr", "dt", "dd", "table"}
NAVIGATION = {"Download the ebook", "Prev", "Next", "Home", "Up", "The Debian Administrator's Handbook"}


class Prose(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self.skipping = [], 0

    def handle_starttag(self, tag, attrs):
        self.skipping += tag in SKIPPED
        if tag in BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        self.skipping -= tag in SKIPPED and self.skipping > 0

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def prose(page):
    parser = Prose()
    parser.feed(page)
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(line for line in lines if line not in NAVIGATION)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def main():
    source, out = map(pathlib.Path, sys.argv[1:3])
    out.mkdir(parents=True, exist_ok=True)
    for page in sorted(source.glob("*.html")):
        text = prose(page.read_text(encoding="utf-8"))
        if len(text.split()) >= 50:
            (out / (page.stem + ".txt")).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
