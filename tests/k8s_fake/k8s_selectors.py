"""Label and field selectors (k8s.io/apimachinery/pkg/labels, .../fields)."""

import re

from apierrors import bad_request

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _split_top(s):
    """Split at commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _check_key(key, whole):
    if not key or len(key) > 316 or not _KEY.match(key):
        raise bad_request("unable to parse requirement: invalid label key \"%s\": name part must consist of "
                          "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                          "alphanumeric character" % key)


def _check_value(v):
    if len(v) > 63 or not _VALUE.match(v):
        raise bad_request("unable to parse requirement: invalid label value: \"%s\": a valid label must be an "
                          "empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
                          "start and end with an alphanumeric character" % v)


def parse_label_selector(s):
    """-> list of (key, op, values) with op in = != in notin exists !exists; raises 400 on bad syntax."""
    reqs = []
    if s is None or not s.strip():
        return reqs
    for part in _split_top(s):
        p = part.strip()
        if not p:
            raise bad_request("unable to parse requirement: found '', expected: identifier")
        m = re.match(r"^(\S+?)\s+(in|notin)\s*\((.*)\)$", p)
        if m:
            key, op = m.group(1), m.group(2)
            vals = [v.strip() for v in m.group(3).split(",")] if m.group(3).strip() else []
            if not vals:
                raise bad_request("unable to parse requirement: for 'in', 'notin' operators, values set "
                                  "can't be empty")
            _check_key(key, s)
            for v in vals:
                _check_value(v)
            reqs.append((key, op, vals))
            continue
        m = re.match(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$", p)
        if m:
            key, op, val = m.group(1), m.group(2), m.group(3)
            _check_key(key, s)
            _check_value(val)
            reqs.append((key, "!=" if op == "!=" else "=", [val]))
            continue
        m = re.match(r"^(!?)\s*([^=!\s(),]+)$", p)
        if m:
            _check_key(m.group(2), s)
            reqs.append((m.group(2), "!exists" if m.group(1) else "exists", []))
            continue
        raise bad_request("unable to parse requirement: found '%s', expected: in, notin, =, ==, !=, gt, lt" % p)
    return reqs


def match_labels(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=" and not (has and v == vals[0]):
            return False
        if op == "!=" and has and v == vals[0]:
            return False
        if op == "in" and not (has and v in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


def selector_from_label_selector(sel):
    """metav1.LabelSelector (matchLabels/matchExpressions) -> requirements list."""
    reqs = []
    if not isinstance(sel, dict):
        return reqs
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append((k, "=", [v]))
    for e in sel.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}.get(e.get("operator"))
        if op:
            reqs.append((e.get("key"), op, list(e.get("values") or [])))
    return reqs


def parse_field_selector(s, res):
    """-> list of (field, op, value); 400 for a field the resource does not support."""
    reqs = []
    if s is None or not s.strip():
        return reqs
    for part in s.split(","):
        p = part.strip()
        if not p:
            continue
        m = re.match(r"^([^=!]+?)\s*(==|=|!=)\s*(.*)$", p)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (s, p))
        field, op, val = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in res.field_selectors:
            raise bad_request('field label not supported: %s' % field)
        reqs.append((field, "!=" if op == "!=" else "=", val))
    return reqs


def field_value(obj, field):
    if field == "status.successful":  # jobs
        return str((obj.get("status") or {}).get("succeeded") or 0)
    if field == "source":
        return str(((obj.get("source") or {}).get("component")) or "")
    cur = obj
    for k in field.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(k)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, list):
        return ",".join(str(x.get("ip", x)) if isinstance(x, dict) else str(x) for x in cur)
    return str(cur)


def match_fields(reqs, obj):
    for field, op, val in reqs:
        v = field_value(obj, field)
        if op == "=" and v != val:
            return False
        if op == "!=" and v == val:
            return False
    return True
