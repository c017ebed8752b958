#!/usr/bin/env python3
"""Rewrites plain prose in WikiText-2's spelling, to measure how much of a model's loss on WikiText-2
comes from that spelling rather than from the articles (docs/experiments/quality.md section 18).

Usage: wikitext_style.py OUT_FOLDER FILE.txt ...

WikiText's "raw" files are tokenized text: punctuation stands apart (" , " " . " " ( "), possessives
and contractions are split ("Teddy 's", "didn 't"), a hyphen or separator inside a word or number
becomes " @-@ ", " @,@ ", " @.@ ", headings read " = = Heading = = ", and every line starts and ends
with a space. The input's paragraphs are blank-line separated; a short line without closing
punctuation is a heading (wiki_prose.py keeps headings as lines of their own).
"""
import pathlib
import re
import sys


def spell(paragraph):
    text = re.sub(r"(?<=\d),(?=\d)", " @,@ ", paragraph)
    text = re.sub(r"(?<=\d)\.(?=\d)", " @.@ ", text)
    text = re.sub(r"(?<=\w)-(?=\w)", " @-@ ", text)
    text = re.sub(r"(?<=\w)'(s|t|re|ve|ll|d|m)\b", r" '\1", text)  # WikiText: "didn 't", "Teddy 's"
    text = re.sub(r"(?<!@)([,.;:!?()\[\]\"–—])(?!@)", r" \1 ", text)
    return " ".join(text.split())


def is_heading(line):
    return len(line.split()) <= 8 and not re.search(r"[.!?:;,\"]$", line)


def rewrite(source):
    lines = []
    for paragraph in re.split(r"\n\s*\n", source):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        lines.append(f" = = {spell(paragraph)} = = " if is_heading(paragraph) else f" {spell(paragraph)} ")
    return "\n".join(lines) + "\n"


def main(arguments):
    if len(arguments) < 2:
        sys.exit(__doc__)
    out = pathlib.Path(arguments[0])
    out.mkdir(parents=True, exist_ok=True)
    for name in arguments[1:]:
        path = pathlib.Path(name)
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            sys.exit(f"wikitext_style: cannot read {path} ({error}); pass UTF-8 text files "
                     "(fetch-corpora.sh passes data/wikipedia/Am*.txt)")
        (out / path.name).write_text(rewrite(source), encoding="utf-8")
    print(f"wikitext_style: {len(arguments) - 1} files into {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
