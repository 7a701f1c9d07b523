#!/usr/bin/env python3
"""Writes the fuzz seed corpus: every llhttp request case (tests/conformance/llhttp/cases.jsonl)
as one file, prefixed with the slice byte the fuzz target reads first.
   fuzz/make_corpus.py OUT_DIR"""
import base64, json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
n = 0
for line in open(os.path.join(here, '..', 'tests', 'conformance', 'llhttp', 'cases.jsonl')):
    case = json.loads(line)
    if not case['type'].startswith('request'):
        continue
    raw = base64.b64decode(case['raw_b64'])
    for step in (0, 6):  # whole-ish slices and 7-byte slices
        with open(os.path.join(out, 'llhttp-%03d-%d' % (n, step)), 'wb') as f:
            f.write(bytes([step]) + raw)
    n += 1
print('%d llhttp request cases written to %s' % (n, out))
