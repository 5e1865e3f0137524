"""A tiny block-style YAML emitter (stdlib has none). Strings are JSON-quoted, which is valid YAML."""
import json
import re

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _key(k):
    return k if isinstance(k, str) and _PLAIN_KEY.match(k) and k not in ("true", "false", "null", "yes", "no", "on", "off") else _scalar(k)


def _scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return json.dumps(str(v))


def _emit(v, indent, out):
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            out.append(pad + "{}")
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                out.append(f"{pad}{_key(k)}:")
                _emit(x, indent + 1, out)
            else:
                out.append(f"{pad}{_key(k)}: {_flow(x)}")
    elif isinstance(v, list):
        for x in v:
            if isinstance(x, dict) and x:
                sub = []
                _emit(x, indent + 1, sub)
                first = sub[0].lstrip()
                out.append(f"{pad}- {first}")
                out.extend(sub[1:])
            elif isinstance(x, list) and x:
                out.append(f"{pad}-")
                _emit(x, indent + 1, out)
            else:
                out.append(f"{pad}- {_flow(x)}")
    else:
        out.append(pad + _scalar(v))


def _flow(v):
    if isinstance(v, dict):
        return "{}" if not v else json.dumps(v)
    if isinstance(v, list):
        return "[]" if not v else json.dumps(v)
    return _scalar(v)


def dump(doc):
    out = []
    _emit(doc, 0, out)
    return "\n".join(out) + "\n"
