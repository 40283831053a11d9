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

if have_all "$WN" && [[ -s "$WN/lexnames" ]]; then
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
    echo "WordNet 3.0 laid out in $WN" >&2
fi

# Check that NLTK reads it, when a Python with nltk is at hand.
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
if "$PY" -c "import nltk" 2>/dev/null; then
    NLTK_DATA="$DEST" "$PY" -W ignore -c "
from nltk.corpus import wordnet as wn
s = wn.synsets('dog')
assert s and s[0].name() == 'dog.n.01', s
assert s[0].lexname() == 'noun.animal', s[0].lexname()
print(f'nltk reads WordNet {wn.get_version()}: {len(s)} synsets for dog', flush=True)
" >&2
else
    echo "note: no Python with nltk found ($PY); skipped the read check" >&2
fi
