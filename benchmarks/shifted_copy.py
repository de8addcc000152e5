"""A shifted copy of a labelled TSV for robustness checks (``skeleton analyze DIR --data``).

Typos: in each text, a seeded share of the words of four letters or more get two neighbouring inner
letters swapped ("movie" -> "mvoie"), the kind of noise user text carries and the training data does
not. Labels and every other column stay as they are. Write the copy outside the repository: the
data is the user's.

    python benchmarks/shifted_copy.py ../shared/data/sst2/dev.tsv /tmp/sst2_dev_typos.tsv [--share 0.3]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path


def with_typos(text: str, share: float, rng: random.Random) -> str:
    words = text.split(" ")
    for index, word in enumerate(words):
        if len(word) >= 4 and word.isalpha() and rng.random() < share:
            at = rng.randrange(1, len(word) - 2)  # inner letters only: first and last stay
            words[index] = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--share", type=float, default=0.3, help="share of eligible words given a typo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.source.is_file():
        parser.error(f"no such file: {args.source}")
    if not 0 <= args.share <= 1:
        parser.error(f"--share must lie in [0, 1], got {args.share}")
    rng = random.Random(args.seed)
    lines = args.source.read_text(encoding="utf-8-sig").split("\n")
    header = lines[0].rstrip("\r").split("\t")
    text_columns = [i for i, name in enumerate(header) if name.strip().lower() not in ("label", "quality")]
    text_columns = [i for i in text_columns if "id" not in header[i].lower()]
    out = [lines[0].rstrip("\r")]
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        for i in text_columns:
            fields[i] = with_typos(fields[i], args.share, rng)
        out.append("\t".join(fields))
    args.target.write_text("\n".join(out) + "\n")
    print(f"wrote {len(out) - 1} rows to {args.target}")


if __name__ == "__main__":
    main()
