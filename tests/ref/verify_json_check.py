#!/usr/bin/env python3
"""verify_json_check.py: schema checker for `spx verify --json` reports (specs/spx-verify-json.md).

  verify_json_check.py REPORT.json [--expect 'PATH OP VALUE'] ...

Checks every required member and its type (standard library json module only), the documented
invariants between members, then each --expect: PATH is a dotted path (list indices are numbers,
e.g. layers.0.mlp), OP one of == != <= >= < >, VALUE a JSON literal (number, true, null, "str").
Exit 0 when everything holds, 1 with one line per problem otherwise.
"""
import json
import sys

NUM = (int, float)
LINEARS = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}
problems = []


def need(cond, msg):
    if not cond:
        problems.append(msg)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, NUM) and not isinstance(v, bool)


def num_or_null(v):
    return v is None or is_num(v)


def obj(parent, key, where):
    v = parent.get(key, "<absent>") if isinstance(parent, dict) else "<absent>"
    need(isinstance(v, dict), f"{where}{key}: object expected, got {v!r}")
    return v if isinstance(v, dict) else {}


def members(o, spec, where):
    for key, check, desc in spec:
        need(key in o, f"{where}{key}: missing")
        if key in o:
            need(check(o[key]), f"{where}{key}: {desc} expected, got {o[key]!r}")


def check_schema(r):
    need(isinstance(r, dict), "top level: object expected")
    if not isinstance(r, dict):
        return
    members(r, [("schema", lambda v: v == "spx-verify", '"spx-verify"'),
                ("version", lambda v: is_int(v) and v == 1, "1"),
                ("candidate", lambda v: isinstance(v, str), "string"),
                ("reference", lambda v: v is None or isinstance(v, str), "string or null"),
                ("layers", lambda v: isinstance(v, list), "array"),
                ("failures", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                 "array of strings"),
                ("pass", lambda v: isinstance(v, bool), "boolean")], "")
    members(obj(r, "integrity", ""), [("ok", lambda v: v is True, "true"),
                                      ("tensors", is_int, "integer"), ("bytes", is_int, "integer")], "integrity.")
    for part in ("data", "logits", "probe", "baseline"):
        need(part in r and (r[part] is None or isinstance(r[part], dict)), f"{part}: object or null expected")
    if isinstance(r.get("data"), dict):
        members(r["data"], [("source", lambda v: v is None or isinstance(v, str), "string or null")] +
                [(k, is_int, "integer") for k in ("ctx", "windows", "positions", "dropped")], "data.")
    if isinstance(r.get("logits"), dict):
        members(r["logits"], [(k, num_or_null, "number or null") for k in (
            "kl_mean", "kl_max", "kl_p999", "top1", "nll_ref", "nll_cand", "ppl_ref", "ppl_cand", "ppl_ratio")],
            "logits.")
    if isinstance(r.get("probe"), dict):
        members(r["probe"], [("status", lambda v: v in ("ok", "fail", "stale"), '"ok", "fail" or "stale"'),
                             ("positions", is_int, "integer"), ("top1_ok", is_int, "integer"),
                             ("max_abs_err", num_or_null, "number or null"), ("tol", is_num, "number")], "probe.")
    if isinstance(r.get("baseline"), dict):
        members(r["baseline"], [("file", lambda v: isinstance(v, str), "string"), ("tol", is_num, "number"),
                                ("top1_tol", is_num, "number")], "baseline.")
    members(obj(r, "thresholds", ""), [(k, num_or_null, "number or null")
                                       for k in ("max_ppl_ratio", "max_kl", "min_top1")], "thresholds.")
    for i, L in enumerate(r.get("layers") or []):
        where = f"layers.{i}."
        need(isinstance(L, dict), f"{where[:-1]}: object expected")
        if not isinstance(L, dict):
            continue
        members(L, [("layer", lambda v, i=i: v == i, f"{i}"), ("attn", num_or_null, "number or null"),
                    ("mlp", num_or_null, "number or null"), ("block", num_or_null, "number or null"),
                    ("linears", lambda v: isinstance(v, dict) and set(v) <= LINEARS and
                     all(num_or_null(x) for x in v.values()), "object of linear-layer names to numbers")], where)
    # invariants
    has_ref = r.get("reference") is not None
    need((r.get("data") is not None) == has_ref and (r.get("logits") is not None) == has_ref,
         "data and logits must be present exactly when reference is")
    need(has_ref or not r.get("layers"), "layers must be empty without a reference")
    need(r.get("pass") == (len(r.get("failures") or []) == 0), "pass must equal (failures == [])")


def lookup(r, path):
    v = r
    for part in path.split("."):
        if isinstance(v, list):
            v = v[int(part)]
        else:
            v = v[part]
    return v


def check_expect(r, e):
    try:
        path, op, lit = e.split(None, 2)
        want = json.loads(lit)
        got = lookup(r, path)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        problems.append(f"--expect '{e}': {exc}")
        return
    ops = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<=": lambda a, b: a <= b,
           ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, ">": lambda a, b: a > b}
    try:
        ok = ops[op](got, want)
    except (KeyError, TypeError):
        ok = False
    need(ok, f"--expect '{e}': got {got!r}")


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 1
    expects = []
    path = None
    i = 0
    while i < len(args):
        if args[i] == "--expect" and i + 1 < len(args):
            expects.append(args[i + 1])
            i += 2
        else:
            path = args[i]
            i += 1
    try:
        with open(path) as f:
            r = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    check_schema(r)
    for e in expects:
        check_expect(r, e)
    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
