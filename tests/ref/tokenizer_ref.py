#!/usr/bin/env python3
"""tokenizer_ref.py: an independent, deliberately simple pure-Python reference of the Hugging Face
tokenizer.json BPE pipeline, used to check spx's C tokenizer (common/spx_tok_*.c).

Usage: tokenizer_ref.py TOKENIZER_JSON LINES_FILE OUT_FILE
  LINES_FILE: UTF-8 text, one input per line (the '\\n' is not part of the input).
  OUT_FILE:   one line per input line: the token ids (no special tokens added), space separated.

Independent choices (so the comparison means something):
  - BPE: the plain "find the lowest-rank adjacent pair (leftmost on ties), merge it, repeat"
    loop over a Python list (the C code uses a heap with lazy deletion).
  - GPT-2 pre-tokenizer: the actual regex run by Python's `re` module, with \\p{L} approximated by
    str.isalpha() and \\p{N} by str.isnumeric() (character classes built over all code points);
    the C code hand-codes the regex with its own Unicode range tables.
  - NFC normalizers use unicodedata (C treats NFC as identity).
Only the standard library is used.
"""
import json
import re
import sys
import unicodedata


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def class_ranges(pred):
    """regex character-class body for all code points satisfying pred"""
    out, start, prev = [], None, None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            ok = False
        else:
            ok = pred(chr(cp))
        if ok and start is None:
            start = cp
        if not ok and start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return "".join(re.escape(chr(a)) if a == b else re.escape(chr(a)) + "-" + re.escape(chr(b)) for a, b in out)


_GPT2 = None


def gpt2_regex():
    global _GPT2
    if _GPT2 is None:
        L = class_ranges(str.isalpha)
        N = class_ranges(lambda c: c.isnumeric() and not c.isalpha())
        pat = (r"'s|'t|'re|'ve|'m|'ll|'d| ?[" + L + "]+| ?[" + N + r"]+| ?[^\s" + L + N +
               r"]+|\s+(?!\S)|\s+")
        _GPT2 = re.compile(pat)
    return _GPT2


class Tokenizer:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        m = j["model"]
        if m.get("type", "BPE") != "BPE":
            raise SystemExit("only BPE models")
        self.vocab = m["vocab"]
        self.ranks = {}
        for r, mg in enumerate(m.get("merges") or []):
            a, b = mg.split(" ") if isinstance(mg, str) else mg
            self.ranks[(self.vocab[a], self.vocab[b])] = (r, self.vocab[a + b])
        self.byte_fallback = bool(m.get("byte_fallback"))
        self.fuse_unk = bool(m.get("fuse_unk"))
        self.ignore_merges = bool(m.get("ignore_merges"))
        unk = m.get("unk_token")
        self.unk = self.vocab[unk] if unk is not None else None
        self.added = sorted(j.get("added_tokens") or [], key=lambda a: -len(a["content"]))
        for a in self.added:
            if a.get("lstrip") or a.get("rstrip") or a.get("single_word"):
                raise SystemExit("lstrip/rstrip/single_word added tokens are not modelled here")
        self.added_re = (re.compile("|".join(re.escape(a["content"]) for a in self.added))
                         if self.added else None)
        self.added_id = {a["content"]: a["id"] for a in self.added}
        self.norms = self.flatten(j.get("normalizer"), "normalizers")
        self.pres = self.flatten(j.get("pre_tokenizer"), "pretokenizers")
        self.b2u = bytes_to_unicode()

    @staticmethod
    def flatten(node, key):
        if node is None:
            return []
        if node["type"] == "Sequence":
            out = []
            for n in node[key]:
                out += Tokenizer.flatten(n, key)
            return out
        return [node]

    def normalize(self, s):
        for n in self.norms:
            t = n["type"]
            if t == "Prepend":
                if s:
                    s = n["prepend"] + s
            elif t == "Replace":
                s = s.replace(n["pattern"]["String"], n["content"])
            elif t == "NFC":
                s = unicodedata.normalize("NFC", s)
            else:
                raise SystemExit("normalizer " + t)
        return s

    def pretokenize(self, s, at_start):
        splits = [s]
        for p in self.pres:
            t = p["type"]
            out = []
            for k, x in enumerate(splits):
                if t == "Metaspace":
                    rep = p.get("replacement", "\u2581")
                    scheme = p.get("prepend_scheme", "always" if p.get("add_prefix_space", True) else "never")
                    x = x.replace(" ", rep)
                    if not x.startswith(rep) and (scheme == "always" or (scheme == "first" and at_start and k == 0)):
                        x = rep + x
                    if p.get("split", True):
                        cur = ""
                        for ch in x:
                            if ch == rep and cur:
                                out.append(cur)
                                cur = ""
                            cur += ch
                        out.append(cur)
                    else:
                        out.append(x)
                elif t == "ByteLevel":
                    if p.get("add_prefix_space", True) and not x.startswith(" "):
                        x = " " + x
                    parts = gpt2_regex().findall(x) if p.get("use_regex", True) else [x]
                    out += ["".join(self.b2u[b] for b in w.encode("utf-8")) for w in parts]
                elif t == "Digits":
                    indiv = p.get("individual_digits", False)
                    cur, prev = "", None
                    for ch in x:
                        num = ch.isnumeric()
                        if prev is not None and (num != prev or (num and indiv)):
                            out.append(cur)
                            cur = ""
                        cur += ch
                        prev = num
                    out.append(cur)
                else:
                    raise SystemExit("pre_tokenizer " + t)
            splits = [x for x in out if x]
        return splits

    def bpe(self, word):
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        syms, unk = [], None
        for ch in word:
            if ch in self.vocab:
                if unk is not None:
                    syms.append(self.unk)
                    unk = None
                syms.append(self.vocab[ch])
                continue
            if self.byte_fallback:
                bt = ["<0x%02X>" % b for b in ch.encode("utf-8")]
                if all(b in self.vocab for b in bt):
                    syms += [self.vocab[b] for b in bt]
                    continue
            if self.unk is not None:
                if unk is not None and not self.fuse_unk:
                    syms.append(self.unk)
                unk = self.unk
        if unk is not None:
            syms.append(self.unk)
        INF = float("inf")

        def rank(i):
            r = self.ranks.get((syms[i], syms[i + 1]))
            return r[0] if r else INF

        ranks = [rank(i) for i in range(len(syms) - 1)]
        while ranks:
            m = min(ranks)
            if m == INF:
                break
            i = ranks.index(m)   # leftmost pair of the lowest rank
            syms[i] = self.ranks[(syms[i], syms[i + 1])][1]
            del syms[i + 1]
            del ranks[i]
            if i < len(ranks):
                ranks[i] = rank(i)
            if i > 0:
                ranks[i - 1] = rank(i - 1)
        return syms

    def encode(self, text):
        ids, pos = [], 0
        segs = []
        if self.added_re:
            for m in self.added_re.finditer(text):
                segs.append((text[pos:m.start()], pos == 0))
                segs.append(m.group(0))
                pos = m.end()
        segs.append((text[pos:], pos == 0))
        for s in segs:
            if isinstance(s, str):
                ids.append(self.added_id[s])
                continue
            seg, at_start = s
            for w in self.pretokenize(self.normalize(seg), at_start):
                ids += self.bpe(w)
        return ids


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    tok = Tokenizer(sys.argv[1])
    with open(sys.argv[2], "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    with open(sys.argv[3], "w") as out:
        for line in lines:
            out.write(" ".join(str(i) for i in tok.encode(line)) + "\n")


if __name__ == "__main__":
    main()
