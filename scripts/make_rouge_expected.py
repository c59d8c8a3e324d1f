#!/usr/bin/python3
"""Builds the expected values for rhead's ROUGE-1 and Porter stemmer tests.

Run with Debian's Python, which has python3-nltk:

    /usr/bin/python3 scripts/make_rouge_expected.py [--essays DIR] [--needles FILE]

Writes
  tests/data/rouge/porter_expected.tsv   word <TAB> NLTK PorterStemmer().stem(word)
  tests/data/rouge/rouge_expected.jsonl  {"reference", "prediction", "ref_tokens",
                                          "pred_tokens", "precision", "recall", "f"}

The oracle is NLTK's PorterStemmer() in its default mode (NLTK_EXTENSIONS), the
stemmer the rouge_score package uses. rouge_score itself is not packaged for
Debian, so its tokenizer and ROUGE-N arithmetic are restated below from its
documented rules:
  text.lower(); runs of [^a-z0-9] -> " "; split on whitespace; tokens longer than
  3 characters are stemmed; tokens not matching ^[a-z0-9]+$ are dropped.
  overlap = sum over tokens of min(ref count, pred count);
  precision = overlap / max(pred tokens, 1); recall = overlap / max(ref tokens, 1);
  f = 2 p r / (p + r), or 0.

Everything is deterministic: the pairs come from a fixed seed, and the word list
is sorted.
"""

import argparse
import collections
import glob
import json
import os
import random
import re

from nltk.stem.porter import PorterStemmer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO, "tests", "data", "rouge")
SEED = 20240415

STEMMER = PorterStemmer()
assert STEMMER.mode == PorterStemmer.NLTK_EXTENSIONS

NON_ALNUM = re.compile(r"[^a-z0-9]+")
SPACES = re.compile(r"\s+")
VALID = re.compile(r"^[a-z0-9]+$")


def rouge_tokenize(text, stem=True):
    text = NON_ALNUM.sub(" ", text.lower())
    tokens = SPACES.split(text)
    if stem:
        tokens = [STEMMER.stem(t) if len(t) > 3 else t for t in tokens]
    return [t for t in tokens if VALID.match(t)]


def rouge1(reference, prediction, stem=True):
    ref = rouge_tokenize(reference, stem)
    pred = rouge_tokenize(prediction, stem)
    rc, pc = collections.Counter(ref), collections.Counter(pred)
    overlap = sum(min(n, pc[t]) for t, n in rc.items())
    precision = overlap / max(len(pred), 1)
    recall = overlap / max(len(ref), 1)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return ref, pred, precision, recall, f


# ---------------------------------------------------------------- word list ----

# Words chosen to reach every rule and every NLTK-specific branch.
TRICKY = """
sky skies Sky Skies SKIES dying Dying lying tying news News NEWS innings inning
outings outing cannings canning howe Howe proceed proceeds proceeded exceed exceeds
exceeded succeed succeeded succeeds
ties dies lies pies vies flies spies tries cries ponies caresses caress cats
died lied tied vied spied cried tried fried applied replied studied ied ies
feed agreed bleed bleeds disagreed freed greed speed needed guaranteed
plastered bled motoring sing singing conflated troubled sized hopping tanned
falling hissing fizzed failing filing hoping hopped
happy sky enjoy enjoyment spy fly try toy boy say syzygy yyyy ayyy yay yoyo yelling
relational conditional rational valenci hesitanci digitizer conformabli radicalli
differentli vileli analogousli vietnamization predication operator feudalism
decisiveness hopefulness callousness formaliti sensitiviti sensibiliti
triplicate formative formalize electriciti electrical hopeful goodness
revival allowance inference airliner gyroscopic adjustable defensible irritant
replacement adjustment dependent adoption homologou communism activate
angulariti homologous effective bowdlerize probate rate cease controll roll
generalli generally finally totally usually really mentally logically
archaeology theology geology biology apology analogy eulogy philology
archaeologi theologi geologi biologi
hopefulli beautifully carefully mindfully
abilities ability possibly probability sensibility responsibilities
organization organizations organizational nationalization rationalization
agreement agreements argument arguments judgement judgment
running runner ran runs swimming swimmer dropped dropping stopped
controlling controlled travelled traveling labelled
generously generous genuinely continuously
conditioning conditionally
a an as at be by is it of on or to up we ab ox
aed aing ed ing eing ying bying tying
oed oing bed red sled fled led bring sting string thing things nothing something
was has his this thus bus gas yes its us
ies ied iesy ss sss sses
hello world Hello WORLD MixedCase CamelCaseWords
1990s 1st 2nd 3rd 4th 100s 2023 mp3 h2o b2b 123ing 456ed covid19 x86 a1b2c3d4
university universities universal universe
dies dyed dying tie tying
agree agreed agreeing agreement
oats trees ivy troubles private oaten orrery tr ee tree y by
happiness business busy busily
quickly quick quicken quickening
analysis analyses analyze analyzed analyzing analytical analytically
hypothesis hypotheses hypothesize
criteria criterion phenomena phenomenon
mice geese children oxen women men
knives wives lives leaves thieves
daily dairy diary fairy
played playing player plays
employ employed employee employment
destroy destroyed destroying
obeyed obeying prayed praying stayed staying
sandwich sandwiches Dolores Park sunny Francisco
espresso evening walk walking walked
greenhouse levels surface temperatures ocean acidification
disliked disliking everyone because mean person ride horse dive
abbreviation aberration abnormality abolition abomination
sensational sensationally emotional emotionally traditional traditionally
irrational irrationally exceptional exceptionally
realization realizations organizer organizers
nationality nationalities relativity relativities
positive positively positivity negativity
activity activities activeness
usefulness uselessness thoughtfulness
historical historically typical typically electric electricity
eventual eventually eventuality
differential differentiate differentiation
mention mentioned mentioning adopt adopted adoption
ion lion union onion opinion question questions questioning
sensation station nation nations
allele alleles allied alleys alley valley valleys
""".split()


def unicode_words():
    """Single code points whose lower-casing rhead claims to reproduce, plus a few
    words that mix non-ASCII letters in."""
    words = []
    ranges = [(0xC0, 0x17F), (0x370, 0x3FF), (0x400, 0x52F)]
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if not ch.isprintable() or len(ch.lower()) != 1:
                continue
            words.append(ch)
    words += ["\u2126", "\u212a", "\u212b"]
    words += [
        "café", "cafés", "naïve", "naïvely", "résumé", "résumés", "Zürich", "façade",
        "façades", "ÉCOLE", "Ångström", "İstanbul", "İİ", "straße", "Straße", "ΑΘΗΝΑ",
        "Москва", "МОСКВА", "jalapeño", "jalapeños", "piñata", "über", "Übersetzung",
        "coöperation", "rôle", "rôles", "Kelvin\u212a", "\u212aelvins", "日本語", "🙂ing",
        "e\u0301s", "ing\u0301", "y\u0301y",
    ]
    return words


def essay_words(essay_dir):
    words = set()
    for path in sorted(glob.glob(os.path.join(essay_dir, "*.txt"))):
        with open(path, encoding="utf-8") as f:
            words.update(re.findall(r"[A-Za-z0-9]+", f.read()))
    return words


def write_porter(essay_dir):
    words = essay_words(essay_dir)
    words.update(TRICKY)
    words.update(w.upper() for w in TRICKY[:40])
    words.update(w.capitalize() for w in TRICKY[40:120])
    words.update(unicode_words())
    rows = []
    for w in sorted(words):
        assert "\t" not in w and "\n" not in w
        rows.append(f"{w}\t{STEMMER.stem(w)}\n")
    with open(os.path.join(OUT_DIR, "porter_expected.tsv"), "w", encoding="utf-8") as f:
        f.write("# word<TAB>NLTK PorterStemmer().stem(word); made by scripts/make_rouge_expected.py\n")
        f.writelines(rows)
    return len(rows)


# ------------------------------------------------------------------- pairs ----

OWN_NEEDLES = [
    "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.",
    "eat a sandwich and sit in Dolores Park on a sunny day",
    "The secret ingredient in Grandma Okonkwo's stew is 3 teaspoons of smoked paprika.",
    "The lighthouse keeper on Varnholm Island paints the railings teal every April.",
    "Project Kestrel's launch code is 7741-ALPHA, stored in the blue binder.",
]

UNICODE_BITS = ["café", "naïve", "—", "–", "“", "”", "‘", "’", "…", "İ", "\u212a", "ß", "日本",
                "🙂", "\u00a0", "\u2009", "é", "Ω", "ñ", "×"]
PUNCT = list(",.;:!?'\"()-[]/&%$#@*")
SUFFIXES = ["s", "es", "ed", "ing", "ly", "ness", "ation", "er", "ful", "ity", "ize", "al", "ies"]


def sentences(essay_dir, limit=400, rng=None):
    out = []
    for path in sorted(glob.glob(os.path.join(essay_dir, "*.txt"))):
        with open(path, encoding="utf-8") as f:
            text = " ".join(f.read().split())
        for s in re.split(r"(?<=[.!?])\s+", text):
            n = len(s.split())
            if 4 <= n <= 40:
                out.append(s)
    rng.shuffle(out)
    return out[:limit]


def mutate(ref, rng, vocab):
    """One prediction derived from `ref` by a few random edits."""
    words = ref.split()
    kinds = rng.sample(
        ["delete", "substitute", "inflect", "punct", "case", "digits", "unicode",
         "truncate", "repeat", "wrap", "shuffle", "join"],
        k=rng.randint(1, 3))
    for kind in kinds:
        if not words:
            break
        if kind == "delete":
            for _ in range(rng.randint(1, max(1, len(words) // 3))):
                if words:
                    del words[rng.randrange(len(words))]
        elif kind == "substitute":
            for _ in range(rng.randint(1, 3)):
                words[rng.randrange(len(words))] = rng.choice(vocab)
        elif kind == "inflect":
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(words))
                w = words[i].strip(".,;:!?\"'")
                if rng.random() < 0.5 and len(w) > 3:
                    w = w[: -rng.randint(1, 2)]
                words[i] = w + rng.choice(SUFFIXES)
        elif kind == "punct":
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(words))
                p = rng.choice(PUNCT)
                words[i] = p + words[i] if rng.random() < 0.5 else words[i] + p
        elif kind == "case":
            mode = rng.randrange(3)
            words = [w.upper() if mode == 0 else w.title() if mode == 1 else w.swapcase() for w in words]
        elif kind == "digits":
            for _ in range(rng.randint(1, 2)):
                tok = rng.choice([str(rng.randint(0, 3000)), f"{rng.randint(1, 99)}th", "1,000",
                                  "3.14", f"v{rng.randint(1, 9)}", "2nd", "90s"])
                words.insert(rng.randrange(len(words) + 1), tok)
        elif kind == "unicode":
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(words))
                u = rng.choice(UNICODE_BITS)
                r = rng.random()
                if r < 0.33:
                    words[i] = u + words[i]
                elif r < 0.66:
                    words[i] = words[i] + u
                else:
                    words.insert(i, u)
        elif kind == "truncate":
            words = words[: rng.randint(1, len(words))]
        elif kind == "repeat":
            i = rng.randrange(len(words))
            words = words[: i + 1] + words[i: i + rng.randint(1, 3)] + words[i + 1:]
        elif kind == "wrap":
            pre = rng.choice(["The answer is", "Answer:", "According to the book,", "I think",
                              "Based on the content of the book,", ""])
            post = rng.choice(["", ".", " Question: what else?", "\n", " (see above)"])
            words = pre.split() + words + post.split()
        elif kind == "shuffle":
            rng.shuffle(words)
        elif kind == "join":
            i = rng.randrange(len(words))
            if i + 1 < len(words):
                words[i: i + 2] = [rng.choice(["", "-", "_", "'", "/"]).join(words[i: i + 2])]
    sep = rng.choice([" ", " ", " ", "  ", "\t", "\n"])
    return sep.join(words)


def make_pairs(essay_dir, needle_file):
    rng = random.Random(SEED)
    sents = sentences(essay_dir, rng=rng)
    needles = list(OWN_NEEDLES)
    if needle_file and os.path.exists(needle_file):
        with open(needle_file, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    needles += [d["needle"], d["real_needle"]]
    vocab = sorted({w for s in sents for w in s.split()})
    pairs = []
    # Fixed edge cases first.
    fixed = [
        ("", ""), ("", "anything at all"), ("something", ""), ("...", "!!!"),
        ("The cat sat.", "the CAT sat!"), ("running runners ran", "run"),
        ("skies", "sky"), ("dying", "die"), ("news", "new"), ("lying", "lie"),
        ("İstanbul", "i stanbul"), ("\u212aelvin", "kelvin"), ("café", "caf"),
        ("a a a b", "a b b b"), ("the the the", "the"), ("abc", "ABC abc abc"),
        ("don't", "don t"), ("e-mail", "email"), ("3.14", "3 14"), ("1,000", "1000"),
        ("naïve", "na ve"), ("co-operate", "cooperate"), ("x", "x"),
        ("generalization", "general"), ("relational", "relate"),
        ("sandwich\u00a0and\u2009Dolores", "sandwiches and dolores"),
    ]
    pairs += fixed
    for n in needles:
        pairs.append((n, n))
        for _ in range(8):
            pairs.append((n, mutate(n, rng, vocab)))
    for s in sents[:200]:
        pairs.append((s, mutate(s, rng, vocab)))
    for _ in range(40):  # unrelated pairs
        pairs.append((rng.choice(sents), rng.choice(sents)))
    rows = []
    for ref, pred in pairs:
        rt, pt, p, r, f = rouge1(ref, pred)
        rows.append({"reference": ref, "prediction": pred, "ref_tokens": rt, "pred_tokens": pt,
                     "precision": p, "recall": r, "f": f})
    with open(os.path.join(OUT_DIR, "rouge_expected.jsonl"), "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def main():
    shared = os.path.join(os.path.dirname(REPO), "shared")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--essays", default=os.path.join(shared, "data", "haystack", "paul_graham_essays"))
    ap.add_argument("--needles", default=os.path.join(shared, "data", "needles", "detect_needles.jsonl"))
    args = ap.parse_args()
    if not os.path.isdir(args.essays):
        raise SystemExit(f"essay folder not found: {args.essays}")
    os.makedirs(OUT_DIR, exist_ok=True)
    n_words = write_porter(args.essays)
    n_pairs = make_pairs(args.essays, args.needles)
    print(f"porter_expected.tsv: {n_words} words; rouge_expected.jsonl: {n_pairs} pairs")


if __name__ == "__main__":
    main()
