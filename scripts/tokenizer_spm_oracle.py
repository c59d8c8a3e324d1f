#!/usr/bin/python3
"""Reference encoder for rhead's tokenizer tests: encodes each input file with
libsentencepiece (Debian's python3-sentencepiece) and prints its ids on one line,
space-separated, without BOS/EOS.

Usage: /usr/bin/python3 scripts/tokenizer_spm_oracle.py TOKENIZER.model FILE...
"""
import sys

import sentencepiece


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    processor = sentencepiece.SentencePieceProcessor(model_file=argv[0])
    for path in argv[1:]:
        # Bytes as they are: the C++ side reads the files byte for byte too.
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        ids = processor.encode(text)
        sys.stdout.write(" ".join(str(i) for i in ids) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
