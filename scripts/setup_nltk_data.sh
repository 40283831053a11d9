#!/usr/bin/env bash
# Lay out WordNet 3.0 for NLTK with no access to the NLTK downloader (METEOR needs it).
#
#   bash scripts/setup_nltk_data.sh [DEST]        # DEST defaults to ./nltk_data
#
# The database files come from Debian's `wordnet-base` package (installed with apt-get when
# missing); NLTK's reader also wants a `lexnames` file, which Debian does not ship, so it is
# written here from the lexnames(5WN) table. Result: DEST/corpora/wordnet/, usable with
# NLTK_DATA=DEST. Set WORDNET_DIR to take the database files from another folder.
set -euo pipefail

DEST="${1:-nltk_data}"
SRC="${WORDNET_DIR:-/usr/share/wordnet}"
WN="$DEST/corpora/wordnet"
FILES=(data.adj data.adv data.noun data.verb index.adj index.adv index.noun index.verb
       adj.exc adv.exc noun.exc verb.exc)

have_all() {  # have_all DIR: every database file is there and not empty
    local f
    for f in "${FILES[@]}"; do [[ -s "$1/$f" ]] || return 1; done
}

# A Python with nltk writes index.sense and checks the result: $PYTHON, else the repository's
# .venv, else python3.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then PY="$REPO/.venv/bin/python"; else PY=python3; fi
fi
if ! "$PY" -c "import nltk" 2>/dev/null; then
    echo "error: $PY cannot import nltk; install it (pip install 'regen[eval]') or set PYTHON" >&2
    exit 1
fi

if have_all "$WN" && [[ -s "$WN/lexnames" && -s "$WN/index.sense" ]]; then
    echo "WordNet already in $WN" >&2
else
    if ! have_all "$SRC"; then
        if ! command -v apt-get >/dev/null; then
            echo "error: no WordNet files in $SRC and no apt-get to install wordnet-base;" \
                 "set WORDNET_DIR to a WordNet 3.0 dict/ folder" >&2
            exit 1
        fi
        SUDO=""
        if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
        echo "installing Debian package wordnet-base ..." >&2
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get install -y -q wordnet-base >/dev/null 2>&1 \
            || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q wordnet-base; }
        have_all "$SRC" || { echo "error: wordnet-base installed but $SRC is incomplete" >&2; exit 1; }
    fi
    mkdir -p "$WN"
    for f in "${FILES[@]}"; do cp "$SRC/$f" "$WN/$f"; done
    # sense-tag counts: optional for NLTK (only Lemma.count() reads it)
    if [[ -s "$SRC/cntlist.rev" ]]; then cp "$SRC/cntlist.rev" "$WN/cntlist.rev"; fi

    # lexnames(5WN): file number, lexicographer file, syntactic category (1 n, 2 v, 3 adj, 4 adv)
    {
        n=0
        for name in adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact \
            noun.attribute noun.body noun.cognition noun.communication noun.event noun.feeling \
            noun.food noun.group noun.location noun.motive noun.object noun.person \
            noun.phenomenon noun.plant noun.possession noun.process noun.quantity \
            noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change \
            verb.cognition verb.communication verb.competition verb.consumption verb.contact \
            verb.creation verb.emotion verb.motion verb.perception verb.possession verb.social \
            verb.stative verb.weather adj.ppl; do
            case "$name" in
                noun.*) pos=1 ;;
                verb.*) pos=2 ;;
                adj.*) pos=3 ;;
                adv.*) pos=4 ;;
            esac
            printf '%02d\t%s\t%d\n' "$n" "$name" "$pos"
            n=$((n + 1))
        done
    } > "$WN/lexnames"
    [[ "$(wc -l < "$WN/lexnames")" == 45 ]] || { echo "error: lexnames is not 45 rows" >&2; exit 1; }
    if [[ -f /usr/share/doc/wordnet-base/copyright ]]; then
        cp /usr/share/doc/wordnet-base/copyright "$WN/LICENSE"
    fi

    # index.sense (sense key -> synset offset, sense number, tag count; wndb(5WN)): NLTK opens it
    # when the reader is built, and Debian does not ship it. The keys come from NLTK's own
    # Lemma.key(), so they match what NLTK looks up; sense numbers from the order of offsets in
    # index.<pos>, tag counts from cntlist.rev.
    : > "$WN/index.sense"  # empty while the reader that writes it loads
    # NLTK reads only under its data path, so DEST goes on it (NLTK_DATA) for this run too.
    NLTK_DATA="$DEST" "$PY" - "$WN" > "$WN/index.sense.tmp" <<'PYEOF'
import sys
import warnings
from pathlib import Path

from nltk.corpus.reader.wordnet import WordNetCorpusReader

root = Path(sys.argv[1])
sense_number = {}  # (lemma, pos digit of the index file, offset) -> 1-based sense number
for pos, name in (("1", "noun"), ("2", "verb"), ("3", "adj"), ("4", "adv")):
    for line in (root / f"index.{name}").read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):  # licence header
            continue
        fields = line.split()
        n = int(fields[2])
        for i, offset in enumerate(fields[-n:]):
            sense_number[(fields[0], pos, int(offset))] = i + 1
tag_count = {}
cnt = root / "cntlist.rev"
if cnt.exists():
    for line in cnt.read_text(encoding="utf-8").splitlines():
        key, _, count = line.split()
        tag_count[key] = int(count)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "multilingual functions are not available": no OMW here
    wn = WordNetCorpusReader(str(root), None)
rows = set()  # a set: case variants in one synset ('A', 'a') share a key
for synset in wn.all_synsets():
    pos = {"n": "1", "v": "2", "a": "3", "s": "3", "r": "4"}[synset.pos()]
    for lemma in synset.lemmas():
        key = lemma.key()
        number = sense_number[(lemma.name().lower(), pos, synset.offset())]
        rows.add(f"{key} {synset.offset():08d} {number} {tag_count.get(key, 0)}")
rows = sorted(rows, key=lambda r: r.split(" ", 1)[0] + " ")  # as NLTK's binary search reads
sys.stdout.write("\n".join(rows) + "\n")
PYEOF
    mv "$WN/index.sense.tmp" "$WN/index.sense"
    echo "WordNet 3.0 laid out in $WN" >&2
fi

# Check that NLTK reads it: synsets, morphology (noun.exc), and sense keys both ways.
NLTK_DATA="$DEST" "$PY" -W ignore - <<'PYEOF' >&2
from nltk.corpus import wordnet as wn

dog = wn.synsets("dog")
assert dog and dog[0].name() == "dog.n.01" and dog[0].lexname() == "noun.animal", dog
assert wn.morphy("geese", wn.NOUN) == "goose"
for name in ("dog.n.01", "run.v.01", "good.a.01", "ample.s.01", "quickly.r.01"):
    for lemma in wn.synset(name).lemmas():
        assert wn.lemma_from_key(lemma.key()) == lemma, lemma.key()
print(f"nltk reads WordNet {wn.get_version()}: {len(dog)} synsets for 'dog', "
      f"sense key of ample.s.01: {wn.synset('ample.s.01').lemmas()[0].key()}")
PYEOF
