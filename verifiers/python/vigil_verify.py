#!/usr/bin/env python3
"""An independent verifier of Vigil's event protocol, written from PROTOCOL.md alone.

Standard library plus `cryptography` (Debian: python3-cryptography) for Ed25519. Everything a
verifier needs is here: RFC 8785 canonical form, event hashes, commitments and disclosures
(§4, §5, §8.1), link verdicts and offline stream checks (§6.2, §8.2), Merkle leaves, roots and
proofs (§13, §15), checkpoints (§14), subject bundles (§16), subject digests and erasure
receipts (§17) and corrections (§18).

Every check returns a list of problems, each a human-readable string; an empty list means the
document verifies. The protocol version is a parameter (`Spec`), so the same code reads the
vector files of every version it knows.

Usage: python3 vigil_verify.py vectors <dir> [--version N]...   (see --help)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Optional

try:  # Ed25519 is the one primitive the standard library lacks.
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError:  # pragma: no cover - reported by main()
    Ed25519PublicKey = None  # type: ignore


# ---------------------------------------------------------------------------------------------
# Protocol parameters per version
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What a verifier expects: the record version (`v` of every record, §3, §12) and the leaf
    construction (§13.2), which are separate since domain strings name constructions, not
    protocol versions (v2 keeps `vigil.commitment.v1`). Leaf v2 binds a column digest."""

    version: int  # `v` of records
    leaf_version: int = 1
    statement_v: int = 1  # `v` of checkpoint statements, proofs, bundles, receipts
    commitment_domain: bytes = b"vigil.commitment.v1"
    checkpoint_domain: bytes = b"vigil.checkpoint.v1"
    bundle_domain: bytes = b"vigil.bundle.v1"
    receipt_domain: bytes = b"vigil.erasure-receipt.v1"
    subject_domain: bytes = b"vigil.subject.v1"
    columns_domain: bytes = b"vigil.columns.v2"

    @property
    def leaf_domain(self) -> bytes:
        return b"vigil.leaf.v%d" % self.leaf_version


KNOWN_RECORD_VERSIONS = (1, 2)
KNOWN_LEAF_VERSIONS = (1, 2)


def spec_for(version: int, leaf_version: int = 1) -> Spec:
    if version not in KNOWN_RECORD_VERSIONS:
        raise VerifyError(f"protocol v{version} records are not implemented by this verifier")
    if leaf_version not in KNOWN_LEAF_VERSIONS:
        raise VerifyError(f"leaf v{leaf_version} is not implemented by this verifier")
    return Spec(version=version, leaf_version=leaf_version)


class VerifyError(Exception):
    """A document is refused; the message says why."""


# ---------------------------------------------------------------------------------------------
# §2 Conventions: hex, base64url, time, lengths, JSON pointers
# ---------------------------------------------------------------------------------------------

HEX64 = re.compile(r"[0-9a-f]{64}")
UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
TIME_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z")
B64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
ZERO_HASH = "0" * 64
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
MAX_SAFE = 2**53 - 1


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_hex64(v: Any) -> bool:
    return isinstance(v, str) and HEX64.fullmatch(v) is not None


def is_int(v: Any) -> bool:
    """A JSON number that is an integer (I-JSON doubles: 2.0 is the integer 2)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, float) and math.isfinite(v) and v == int(v)


def utf16_len(s: str) -> int:
    """Length in UTF-16 code units, as JavaScript's String#length (§2)."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def utf16_key(s: str) -> bytes:
    """Sort key: UTF-16 code units compared in order (big-endian bytes compare the same)."""
    return s.encode("utf-16-be", "surrogatepass")


def has_lone_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def b64url_decode(text: Any) -> Optional[bytes]:
    """Canonical unpadded base64url (RFC 4648 §5, §3.5), or None for any other text.

    The standard library's decoder ignores the unused low bits of the last character, so the
    canonical check is a round trip: the text must be exactly what the encoder writes.
    """
    if not isinstance(text, str) or not B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return raw if b64url_encode(raw) == text else None


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def time_problem(v: Any) -> Optional[str]:
    """§2 time form and a real instant of the proleptic Gregorian calendar (year 0000 leap)."""
    if not isinstance(v, str):
        return "must be a string"
    m = TIME_RE.fullmatch(v)
    if not m:
        return "must be a time of the form YYYY-MM-DDTHH:MM:SS.mmmZ"
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    if not 1 <= mo <= 12:
        return "is not a real instant (month)"
    days = 29 if mo == 2 and _leap(y) else _DAYS[mo - 1]
    if not 1 <= d <= days or h > 23 or mi > 59 or s > 59:
        return "is not a real instant"
    return None


def time_ms(v: str) -> int:
    """Epoch milliseconds of a valid §2 time (proleptic Gregorian, any year 0000-9999)."""
    m = TIME_RE.fullmatch(v)
    assert m
    y, mo, d, h, mi, s, ms = (int(m.group(i)) for i in range(1, 8))
    # days from civil (Howard Hinnant's algorithm), exact for every proleptic year
    y2 = y - (1 if mo <= 2 else 0)
    era = (y2 if y2 >= 0 else y2 - 399) // 400
    yoe = y2 - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return ((days * 24 + h) * 60 + mi) * 60000 + s * 1000 + ms


def pointer_tokens(p: str) -> Optional[list[str]]:
    """RFC 6901 tokens of a pointer, or None if it is not one (`~` only as `~0`/`~1`)."""
    if not isinstance(p, str) or not p.startswith("/"):
        return None
    out = []
    for tok in p[1:].split("/"):
        if re.search(r"~(?![01])", tok):
            return None
        out.append(tok.replace("~1", "/").replace("~0", "~"))
    return out


def escape_token(t: str) -> str:
    return t.replace("~", "~0").replace("/", "~1")


def resolve(obj: Any, tokens: list[str]) -> tuple[bool, Any]:
    """Value at the tokens, reached through objects only (§5.1)."""
    cur = obj
    for t in tokens:
        if not isinstance(cur, dict) or t not in cur:
            return False, None
        cur = cur[t]
    return True, cur


# ---------------------------------------------------------------------------------------------
# JSON: a strict parser and the RFC 8785 serialiser
# ---------------------------------------------------------------------------------------------


class DuplicateMember(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    d: dict = {}
    for k, v in pairs:
        if k in d:
            raise DuplicateMember(f'duplicate member "{k}"')
        d[k] = v
    return d


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _number(text: str) -> Any:
    # I-JSON (§2): every number is an IEEE 754 double. Integers stay Python ints while exact so
    # that 2**53-1 survives; larger ones become the double a JavaScript reader would hold.
    if re.fullmatch(r"-?\d+", text):
        n = int(text)
        if abs(n) <= MAX_SAFE:
            return n
    f = float(text)
    return f


_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)


def json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects, by one iterative scan that skips strings.

    Runs before the parser, which recurses (§3.5: limits are checked before anything else
    reads a value, and a deep document must not exhaust the stack)."""
    depth = best = 0
    for m in _DEPTH_TOKENS.finditer(text):
        ch = m.group()
        if ch in ("[", "{"):
            depth += 1
            if depth > best:
                best = depth
        elif ch in ("]", "}"):
            depth -= 1
    return best


def parse_json(text: str, max_depth: int = 256) -> Any:
    """RFC 8259 JSON with duplicate members, NaN and Infinity refused (raises ValueError)."""
    # (the scan only runs when there are enough brackets to nest that deep at all)
    if text.count("[") + text.count("{") > max_depth and json_depth(text) > max_depth:
        raise ValueError(f"nests deeper than {max_depth} levels")
    return json.loads(
        text,
        object_pairs_hook=_pairs,
        parse_constant=_no_constant,
        parse_int=_number,
        parse_float=_number,
    )


def _number_text(x: Any) -> str:
    """ECMAScript Number::toString (RFC 8785 §3.2.2.3) of a finite double."""
    f = float(x)  # OverflowError for an integer beyond any double
    if not math.isfinite(f):
        raise ValueError("NaN and Infinity have no RFC 8785 form")
    if f == 0:
        return "0"  # -0 too
    sign = "-" if f < 0 else ""
    # repr() gives the shortest digits that round-trip, which is what ECMAScript chooses.
    t = Decimal(repr(abs(f))).as_tuple()
    all_digits = "".join(map(str, t.digits))
    digits = all_digits.rstrip("0") or "0"
    # ECMAScript's s, k and n: value = 0.<digits> × 10^n, digits without trailing zeros
    k = len(digits)
    n = len(all_digits) + t.exponent
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        s = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + s


_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


_TO_ESCAPE = re.compile(r'[\x00-\x1f"\\]')


def _escape(m: "re.Match[str]") -> str:
    ch = m.group()
    return _ESC.get(ch) or "\\u%04x" % ord(ch)


def _string_text(s: str) -> str:
    """RFC 8785 §3.2.2.2: only `"`, `\\` and U+0000-U+001F are escaped, the short forms first."""
    if has_lone_surrogate(s):
        raise ValueError("holds a lone surrogate, which has no RFC 8785 form")
    return '"' + _TO_ESCAPE.sub(_escape, s) + '"'


def canonical(value: Any) -> str:
    """RFC 8785 text of a parsed value (raises ValueError when it has none).

    Recursive: callers check the nesting limit of §3.5 first (`limits_problem`)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return _number_text(value)
    if isinstance(value, str):
        return _string_text(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value.keys(), key=utf16_key)
        return "{" + ",".join(_string_text(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise ValueError(f"{type(value).__name__} is not a JSON value")


def canonical_bytes(value: Any) -> bytes:
    return canonical(value).encode("utf-8")


def canonical_problem(text: str) -> Optional[str]:
    """None when `text` is exactly the RFC 8785 form of what it parses to (§4, §8.1)."""
    try:
        parsed = parse_json(text)
    except DuplicateMember as e:
        return f"is not in RFC 8785 form: {e}"
    except (ValueError, RecursionError) as e:
        return f"is not JSON: {e}"
    try:
        again = canonical(parsed)
    except (ValueError, OverflowError, RecursionError) as e:
        return f"has no RFC 8785 form: {e}"
    if again != text:
        return "is not in RFC 8785 form (whitespace, member order, escapes or number forms differ)"
    return None


def limits_problem(value: Any, base: str = "", start_level: int = 1) -> Optional[str]:
    """§3.5 nesting (32 levels), members (256) and elements (1024), by an iterative walk.

    Returns the first offending node's pointer with the reason."""
    stack = [(value, base, start_level)]
    while stack:
        v, ptr, level = stack.pop()
        if isinstance(v, (dict, list)):
            if level > 32:
                return f"{ptr or '/'}: nests deeper than 32 levels"
            if isinstance(v, dict):
                if len(v) > 256:
                    return f"{ptr or '/'}: has more than 256 members"
                for k, c in v.items():
                    stack.append((c, f"{ptr}/{escape_token(k)}", level + 1))
            else:
                if len(v) > 1024:
                    return f"{ptr or '/'}: has more than 1024 elements"
                for i, c in enumerate(v):
                    stack.append((c, f"{ptr}/{i}", level + 1))
    return None


def closed(doc: Any, required: Iterable[str], optional: Iterable[str] = (), what: str = "document") -> list[str]:
    """§2 closed documents: exactly the listed members, an unknown one named."""
    if not isinstance(doc, dict):
        return [f"{what} must be a JSON object"]
    req, opt = set(required), set(optional)
    probs = [f'{what} has an unknown member "{k}"' for k in doc if k not in req and k not in opt]
    probs += [f'{what} lacks the member "{k}"' for k in sorted(req) if k not in doc]
    return probs


# ---------------------------------------------------------------------------------------------
# §3 The record schema
# ---------------------------------------------------------------------------------------------

CATEGORIES = {"authentication", "access_change", "data_access", "data_change", "admin", "api", "security", "system"}
OUTCOMES = {"success", "failure", "denied", "error"}
NON_PERSON_TYPES = {"service", "system", "api_key", "job", "bot", "device", "integration", "group", "team", "role", "service_account"}
PERSON_TARGET_TYPES = {"user", "person", "customer", "employee", "contractor", "member", "contact"}
STREAM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}")
ACTION_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
TYPE_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
RESERVED_STREAM = ("vigil/", "key/")
PARTIES = ("actor", "target", "access/subject", "access/grantedBy")
FIELD_LIMITS = {"id": 256, "name": 256, "email": 320, "userAgent": 1024, "requestId": 256, "sessionId": 256}


def _text(probs: list[str], obj: dict, key: str, ptr: str, maxlen: int, required: bool = False) -> None:
    if key not in obj:
        if required:
            probs.append(f"{ptr}/{key}: is required")
        return
    v = obj[key]
    if not isinstance(v, str):
        probs.append(f"{ptr}/{key}: must be a string")
    elif not 1 <= utf16_len(v) <= maxlen:
        probs.append(f"{ptr}/{key}: must be 1-{maxlen} characters")


def _party(probs: list[str], v: Any, ptr: str) -> None:
    if not isinstance(v, dict):
        probs.append(f"{ptr}: must be an object")
        return
    t = v.get("type")
    if not isinstance(t, str) or not TYPE_RE.fullmatch(t):
        probs.append(f"{ptr}/type: must match ^[a-z][a-z0-9_.-]{{0,63}}$")
    _text(probs, v, "id", ptr, 256, required=True)
    _text(probs, v, "name", ptr, 256)
    _text(probs, v, "email", ptr, 320)


def record_schema_problems(r: Any, spec: Spec) -> list[str]:
    """§3 (check 4 of §8.1). Unknown members are allowed (§3.4); `corrects` is closed (§18.1)."""
    probs: list[str] = []
    if not isinstance(r, dict):
        return ["/record: must be a JSON object"]
    P = "/record"
    if r.get("v") != spec.version or not is_int(r.get("v")):
        probs.append(f"{P}/v: must be {spec.version} (protocol v{spec.version}): this verifier speaks protocol v{spec.version}")
    if not (isinstance(r.get("id"), str) and UUID7.fullmatch(r["id"])):
        probs.append(f"{P}/id: must be a lower-case UUIDv7")
    if not (isinstance(r.get("stream"), str) and STREAM_RE.fullmatch(r["stream"])):
        probs.append(f"{P}/stream: must match ^[A-Za-z0-9][A-Za-z0-9._:@/-]{{0,199}}$")
    seq = r.get("seq")
    if not (is_int(seq) and 0 <= seq <= MAX_SAFE):
        probs.append(f"{P}/seq: must be an integer 0 … 2^53-1")
    if not is_hex64(r.get("prev")):
        probs.append(f"{P}/prev: must be 64 lower-case hex digits")
    if not isinstance(r.get("time"), str):
        probs.append(f"{P}/time: is required (a string)")
    elif not TIME_RE.fullmatch(r["time"]):
        probs.append(f"{P}/time: must be a time of the form YYYY-MM-DDTHH:MM:SS.mmmZ")
    a = r.get("action")
    if not (isinstance(a, str) and utf16_len(a) <= 128 and ACTION_RE.fullmatch(a)):
        probs.append(f"{P}/action: must match ^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$, at most 128")
    if not isinstance(r.get("category"), str) or r["category"] not in CATEGORIES:
        probs.append(f"{P}/category: must be one of {sorted(CATEGORIES)}")
    if not isinstance(r.get("outcome"), str) or r["outcome"] not in OUTCOMES:
        probs.append(f"{P}/outcome: must be one of {sorted(OUTCOMES)}")
    if "actor" not in r:
        probs.append(f"{P}/actor: is required")
    else:
        _party(probs, r["actor"], f"{P}/actor")
    if "target" in r:
        _party(probs, r["target"], f"{P}/target")
    if "context" in r:
        c = r["context"]
        if not isinstance(c, dict):
            probs.append(f"{P}/context: must be an object")
        else:
            for k in ("ip", "userAgent", "requestId", "sessionId"):
                _text(probs, c, k, f"{P}/context", {"ip": 64}.get(k, FIELD_LIMITS.get(k, 256)))
    if "access" in r:
        ac = r["access"]
        if not isinstance(ac, dict):
            probs.append(f"{P}/access: must be an object")
        else:
            if not isinstance(ac.get("change"), str) or ac["change"] not in ("grant", "revoke"):
                probs.append(f"{P}/access/change: must be grant or revoke")
            if "subject" not in ac:
                probs.append(f"{P}/access/subject: is required")
            else:
                _party(probs, ac["subject"], f"{P}/access/subject")
            for k, n in (("role", 256), ("permission", 256), ("ticket", 256), ("reason", 1024)):
                _text(probs, ac, k, f"{P}/access", n)
            if "role" not in ac and "permission" not in ac:
                probs.append(f"{P}/access: must name a role or a permission")
            if "resource" in ac:
                res = ac["resource"]
                if not isinstance(res, dict):
                    probs.append(f"{P}/access/resource: must be an object")
                else:
                    t = res.get("type")
                    if not isinstance(t, str) or not TYPE_RE.fullmatch(t):
                        probs.append(f"{P}/access/resource/type: must match ^[a-z][a-z0-9_.-]{{0,63}}$")
                    _text(probs, res, "id", f"{P}/access/resource", 256, required=True)
                    _text(probs, res, "name", f"{P}/access/resource", 256)
            if "grantedBy" in ac:
                _party(probs, ac["grantedBy"], f"{P}/access/grantedBy")
            if "expiresAt" in ac and not (isinstance(ac["expiresAt"], str) and TIME_RE.fullmatch(ac["expiresAt"])):
                probs.append(f"{P}/access/expiresAt: must be a time of the form YYYY-MM-DDTHH:MM:SS.mmmZ")
    if "metadata" in r:
        md = r["metadata"]
        if not isinstance(md, dict):
            probs.append(f"{P}/metadata: must be an object")
        elif len(md) > 128:
            probs.append(f"{P}/metadata: must have at most 128 members")
    if "personal" in r:
        pl = r["personal"]
        if not isinstance(pl, list) or not 1 <= len(pl) <= 64:
            probs.append(f"{P}/personal: must be a non-empty array of at most 64 paths")
        else:
            for i, p in enumerate(pl):
                if not isinstance(p, str) or not p.startswith("/") or not 2 <= utf16_len(p) <= 512:
                    probs.append(f"{P}/personal/{i}: must be a path of 2-512 characters starting with /")
            if all(isinstance(p, str) for p in pl) and len(set(pl)) != len(pl):
                probs.append(f"{P}/personal: must not repeat a path")
    if "corrects" in r:
        probs += corrects_problems(r["corrects"], f"{P}/corrects")
    return probs


def corrects_problems(c: Any, ptr: str) -> list[str]:
    """§18.1: `{event, hash}`, both required, nothing else."""
    if not isinstance(c, dict):
        return [f"{ptr}: must be an object"]
    probs = [f"{ptr}/{k}: is not allowed here" for k in c if k not in ("event", "hash")]
    if not (isinstance(c.get("event"), str) and UUID7.fullmatch(c["event"])):
        probs.append(f"{ptr}/event: must be a lower-case UUIDv7")
    if not is_hex64(c.get("hash")):
        probs.append(f"{ptr}/hash: must be 64 lower-case hex digits")
    return probs


# ---------------------------------------------------------------------------------------------
# §5 Personal fields and commitments
# ---------------------------------------------------------------------------------------------

_COMMITTABLE = {f"/{p}/{f}" for p in PARTIES for f in ("id", "name", "email")} | {
    "/context/ip",
    "/context/userAgent",
    "/context/sessionId",
    "/context/requestId",
}


def committable_problem(path: Any) -> Optional[str]:
    """§5.1 `committablePathProblem`."""
    toks = pointer_tokens(path)
    if toks is None:
        return "is not a JSON pointer (RFC 6901)"
    if path in _COMMITTABLE:
        return None
    if len(toks) >= 2 and toks[0] == "metadata" and toks[1] != "":
        return None
    return "cannot be committed: only party ids, names, e-mails, the request context and paths inside /metadata/ can"


def required_personal_paths(r: dict) -> list[str]:
    """§5.1 `requiredPersonalPaths`: paths of fields present that MUST be committed."""
    out: list[str] = []

    def party(ptr: str, p: Any, person: bool) -> None:
        if not isinstance(p, dict):
            return
        if person:
            out.extend(f"{ptr}/{f}" for f in ("id", "name") if f in p)
        if "email" in p:
            out.append(f"{ptr}/email")

    def is_person(p: Any, target: bool) -> bool:
        t = p.get("type") if isinstance(p, dict) else None
        if not isinstance(t, str):
            return not target
        return (t in PERSON_TARGET_TYPES) if target else (t not in NON_PERSON_TYPES)

    party("/actor", r.get("actor"), is_person(r.get("actor"), False))
    party("/target", r.get("target"), is_person(r.get("target"), True))
    ac = r.get("access")
    if isinstance(ac, dict):
        party("/access/subject", ac.get("subject"), is_person(ac.get("subject"), False))
        party("/access/grantedBy", ac.get("grantedBy"), is_person(ac.get("grantedBy"), False))
    c = r.get("context")
    if isinstance(c, dict):
        out.extend(f"/context/{f}" for f in ("ip", "userAgent") if f in c)
    return out


def commitment_preimage(spec: Spec, path: str, value: Any, salt: bytes) -> bytes:
    """§5.2: domain 0x00 u32(Ls) salt u32(Lp) path u32(Lv) RFC8785(value)."""
    p = path.encode("utf-8")
    v = canonical_bytes(value)
    u32 = lambda n: n.to_bytes(4, "big")  # noqa: E731
    return spec.commitment_domain + b"\x00" + u32(len(salt)) + salt + u32(len(p)) + p + u32(len(v)) + v


def commitment(spec: Spec, path: str, value: Any, salt: bytes) -> str:
    return sha256_hex(commitment_preimage(spec, path, value, salt))


def is_ip(v: Any) -> bool:
    """Node's net.isIP: IPv4 dotted decimal without leading zeros; IPv6 incl. embedded IPv4 and %zone."""
    if not isinstance(v, str) or not v.isascii():
        return False
    if re.fullmatch(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}", v):
        return True
    addr, _, zone = v.partition("%")
    if "%" in v and not re.fullmatch(r"[0-9A-Za-z._~:-]+", zone):
        return False
    if ":" not in addr:
        return False
    try:
        ipaddress.IPv6Address(addr)
    except ValueError:
        return False
    tail = addr.rsplit(":", 1)[1]
    if "." in tail and not re.fullmatch(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}", tail):
        return False
    return True


def disclosed_value_problem(path: str, value: Any) -> Optional[str]:
    """§8.1 check 10: the value the field could hold in the clear."""
    if path == "/context/ip":
        return None if is_ip(value) else "must be an IPv4 or IPv6 address"
    if path.startswith("/metadata/"):
        return None
    last = path.rsplit("/", 1)[1]
    if not isinstance(value, str) or value == "":
        return "must be a non-empty string"
    limit = FIELD_LIMITS.get(last, 256)
    if utf16_len(value) > limit:
        return f"must be at most {limit} characters"
    return None


# ---------------------------------------------------------------------------------------------
# §8.1 Checks of one sealed event
# ---------------------------------------------------------------------------------------------


@dataclass
class Checked:
    """The outcome of checking one sealed event."""

    problems: list[str] = field(default_factory=list)
    record: Optional[dict] = None
    record_text: Optional[str] = None


def check_sealed_event(
    wire: Any, spec: Spec, allow_reserved: bool = False, require_canonical: bool = True
) -> Checked:
    """§8.1 checks 1-11 as a verifier runs them, plus the canonical form (§4, §8.1).

    `allow_reserved` skips check 11 for bundle entries and Vigil's own streams (§16.5)."""
    out = Checked()
    probs = out.problems
    # 1. wire shape
    if not isinstance(wire, dict):
        probs.append(": a sealed event must be a JSON object")
        return out
    for k in wire:
        if k not in ("record", "hash", "disclosures"):
            probs.append(f"/{escape_token(k)}: is not allowed here")
    rec = wire.get("record")
    if not isinstance(rec, str) or utf16_len(rec) < 2:
        probs.append("/record: must be a string of at least 2 characters")
    if not is_hex64(wire.get("hash")):
        probs.append("/hash: must be 64 lower-case hex digits")
    discl = wire.get("disclosures", {})
    if "disclosures" in wire:
        if not isinstance(discl, dict) or len(discl) > 64:
            probs.append("/disclosures: must be an object of at most 64 entries")
        else:
            for p, d in discl.items():
                dp = f"/disclosures/{escape_token(p)}"
                if not isinstance(d, dict) or set(d) != {"salt", "value"}:
                    probs.append(f"{dp}: must have exactly salt and value")
                elif not (isinstance(d["salt"], str) and 22 <= len(d["salt"]) <= 86 and B64URL_RE.fullmatch(d["salt"])):
                    probs.append(f"{dp}/salt: must be 22-86 base64url characters")
    if probs:
        return out
    # 2. the hash of the bytes as received
    if has_lone_surrogate(rec):
        probs.append("/record: holds a lone surrogate")
        return out
    out.record_text = rec
    if sha256_hex(rec.encode("utf-8")) != wire["hash"]:
        probs.append("/hash: is not the SHA-256 of the record bytes: the record was altered or the hash is wrong")
    # 3. JSON, 3a limits
    try:
        r = parse_json(rec, max_depth=64)
    except DuplicateMember as e:
        # Still JSON; a verifier refuses it as not canonical (§8.1) and cannot read it safely.
        probs.append(f"/record: is not in RFC 8785 form: {e}")
        return out
    except (ValueError, RecursionError) as e:
        probs.append(f"/record: is not JSON ({e})")
        return out
    lim = limits_problem(r, "/record")
    if lim:
        probs.append(lim)
        return out
    # 4. schema
    sp = record_schema_problems(r, spec)
    if sp:
        probs.extend(sp)
        return out
    out.record = r
    # 5. real instants
    tp = time_problem(r["time"])
    if tp:
        probs.append(f"/record/time: {tp}")
    if isinstance(r.get("access"), dict) and "expiresAt" in r["access"]:
        tp = time_problem(r["access"]["expiresAt"])
        if tp:
            probs.append(f"/record/access/expiresAt: {tp}")
    personal = r.get("personal", [])
    # 6. committable and holding a commitment
    for p in personal:
        cp = committable_problem(p)
        if cp:
            probs.append(f"/record/personal: {p} {cp}")
            continue
        ok, val = resolve(r, pointer_tokens(p) or [])
        if not ok or not is_hex64(val):
            probs.append(f"/record{p}: is listed in /record/personal but holds no commitment (64 lower-case hex)")
    # 7. required paths listed
    for p in required_personal_paths(r):
        if p not in personal:
            probs.append(f"/record{p}: identifies a person, so it must be sent as a commitment and listed in /record/personal")
    # 8. sorted, no repeats
    for a, b in zip(personal, personal[1:]):
        if not utf16_key(a) < utf16_key(b):
            probs.append("/record/personal: must be sorted and without repeats")
            break
    # 9 and 10, per disclosure, in the order of the notes
    for p, d in discl.items():
        dp = f"/disclosures/{escape_token(p)}"
        if p not in personal:
            probs.append(f"{dp}: discloses a field that the record does not list in /record/personal")
            continue
        lim = limits_problem(d["value"], f"{dp}/value", start_level=len(pointer_tokens(p) or []) + 1)
        if lim:
            probs.append(lim)
            continue
        vp = disclosed_value_problem(p, d["value"])
        if vp:
            probs.append(f"{dp}/value: {vp}")
        try:
            canonical(d["value"])
        except (ValueError, OverflowError) as e:
            probs.append(f"{dp}/value: has no RFC 8785 form ({e})")
            continue
        salt = b64url_decode(d["salt"])
        if salt is None:
            probs.append(f"{dp}/salt: is not canonical base64url")
            continue
        if not 16 <= len(salt) <= 64:
            probs.append(f"{dp}/salt: must decode to 16-64 bytes")
            continue
        ok, held = resolve(r, pointer_tokens(p) or [])
        if not ok or commitment(spec, p, d["value"], salt) != held:
            probs.append(f"{dp}: does not open the commitment in the record: value or salt was altered")
    # 11. reserved streams
    if not allow_reserved and r["stream"].lower().startswith(RESERVED_STREAM):
        probs.append("/record/stream: is reserved to Vigil (vigil/, key/)")
    # the canonical form, which a verifier (not the collector) MUST check
    if require_canonical:
        cp = canonical_problem(rec)
        if cp:
            probs.append(f"/record: {cp}")
    return out


# ---------------------------------------------------------------------------------------------
# §9 The sealed framing (protocol v2): `<record bytes> TAB <hash> TAB <disclosures> LF`
# ---------------------------------------------------------------------------------------------

SEALED_MEDIA_TYPE = "application/vnd.vigil.sealed.v2"


@dataclass
class FramedLine:
    index: int  # among the non-blank lines
    record_start: int  # byte offset of the record field in the body
    record: bytes
    hash: bytes
    disclosures: bytes


def parse_framed_body(body: bytes) -> tuple[list[FramedLine], list[str]]:
    """Splits a framed body at LF (the CR that ends a line, before its LF or as the body's last
    byte, is not part of it; any other CR is refused; blank lines are skipped) and each line at
    its TABs, without decoding the record (§9)."""
    lines: list[FramedLine] = []
    probs: list[str] = []
    pos = 0
    index = 0
    while pos < len(body):
        end = body.find(b"\n", pos)
        end = len(body) if end < 0 else end
        line = body[pos:end]
        if line.endswith(b"\r"):
            line = line[:-1]
        if line:
            fields = line.split(b"\t")
            if len(fields) != 3:
                probs.append(f"line {index}: has {len(fields)} TAB-separated fields; a line is exactly three")
            elif b"\r" in line:
                # only the CR that ends a line is dropped; no field may hold another (§9)
                field = "/record" if b"\r" in fields[0] else "/hash" if b"\r" in fields[1] else "/disclosures"
                probs.append(f"line {index}: {field}: holds a raw CR")
            else:
                lines.append(FramedLine(index, pos, fields[0], fields[1], fields[2]))
            index += 1
        pos = end + 1
    return lines, probs


def framed_to_wire(line: FramedLine) -> tuple[Optional[dict], list[str]]:
    """The fields of a line as the sealed event they carry (§8.1 check 1 for the framing)."""
    try:
        record = line.record.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, [f"/record: is not UTF-8 (byte {line.record_start + e.start} of the body)"]
    if not re.fullmatch(rb"[0-9a-f]{64}", line.hash):
        return None, ["/hash: must be 64 lower-case hex digits"]
    wire: dict = {"record": record, "hash": line.hash.decode("ascii")}
    if line.disclosures:
        try:
            d = parse_json(line.disclosures.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            return None, [f"/disclosures: is not JSON ({e})"]
        if not isinstance(d, dict):
            return None, ["/disclosures: must be a JSON object"]
        wire["disclosures"] = d
    return wire, []


def frame_sealed_event(wire: dict) -> bytes:
    """`frameSealedEvent`: one line; the disclosures compact JSON (no whitespace, non-ASCII raw
    UTF-8, §9), or nothing."""
    d = wire.get("disclosures")
    dtext = json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode("utf-8") if d is not None else b""
    return wire["record"].encode("utf-8") + b"\t" + wire["hash"].encode("ascii") + b"\t" + dtext + b"\n"


# ---------------------------------------------------------------------------------------------
# §4 Sealing (to reproduce vectors), §6 links, derived ids
# ---------------------------------------------------------------------------------------------


def seal_event(spec: Spec, inp: dict, link: dict, salts: Callable[[], bytes]) -> dict:
    """§4 `sealEvent`: returns {record, hash[, disclosures]}."""
    P = sorted(set(required_personal_paths(inp)) | set(inp.get("personal", [])), key=utf16_key)
    if len(P) > 64:
        raise VerifyError("/personal: too many personal fields; at most 64 (the required ones included)")
    for a in P:
        for b in P:
            if a != b and b.startswith(a + "/"):
                raise VerifyError(f"/personal: {b} lies inside {a}; commit one or the other")
    R = json.loads(json.dumps(inp))
    R.pop("personal", None)
    R.update(v=spec.version, stream=link["stream"], seq=link["seq"], prev=link["prev"])
    D: dict = {}
    for p in P:
        if committable_problem(p):
            raise VerifyError(f"/personal: {p} {committable_problem(p)}")
        toks = pointer_tokens(p) or []
        ok, value = resolve(inp, toks)
        if not ok:
            raise VerifyError(f"/personal: {p} names no field of the input")
        s = salts()
        parent = resolve(R, toks[:-1])[1]
        parent[toks[-1]] = commitment(spec, p, value, s)
        D[p] = {"salt": b64url_encode(s), "value": value}
    if P:
        R["personal"] = P
    record = canonical(R)
    out = {"record": record, "hash": sha256_hex(record.encode("utf-8"))}
    if P:
        out["disclosures"] = D
    return out


def judge_link(head: Optional[dict], seq: int, prev: str) -> str:
    """§6.2 `judgeLink`."""
    if head is None:
        if seq == 0:
            return "next" if prev == ZERO_HASH else "fork"
        return "gap"
    h, H = head["seq"], head["hash"]
    if seq == h + 1:
        return "next" if prev == H else "fork"
    if seq > h + 1:
        return "gap"
    return "behind"


def derived_event_id(ms: int, seed: str) -> str:
    """§6.2 `derivedEventId`."""
    h = sha256(seed.encode("utf-8"))
    c = (h[6] & 0x7F) << 24 | h[7] << 16 | h[8] << 8 | h[9]
    b = bytearray(16)
    b[0:6] = ms.to_bytes(6, "big")
    b[6] = 0x70 | (c >> 28)
    b[7] = (c >> 20) & 0xFF
    b[8] = 0x80 | ((c >> 14) & 0x3F)
    b[9] = (c >> 6) & 0xFF
    b[10] = ((c << 2) & 0xFF) | (h[10] & 0x03)
    b[11:16] = h[11:16]
    x = b.hex()
    return f"{x[0:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"


def uuid7_ms(uid: str) -> int:
    return int(uid.replace("-", "")[:12], 16)


def check_streams(records: list[tuple[dict, str]]) -> list[str]:
    """§8.2 "A stream, offline": events as (parsed record, hash), already checked as in §8.1.

    Returns the gaps, forks, bad links and events after `stream.closed`; a verifier of an
    export then compares them with the flags and integrity events the store recorded."""
    probs: list[str] = []
    by_stream: dict[str, dict[int, set[str]]] = {}
    info: dict[tuple[str, int, str], dict] = {}
    for r, h in records:
        by_stream.setdefault(r["stream"], {}).setdefault(r["seq"], set()).add(h)
        info[(r["stream"], r["seq"], h)] = r
    for stream, seqs in sorted(by_stream.items()):
        closed_at: Optional[int] = None
        for seq in sorted(seqs):
            hashes = seqs[seq]
            if len(hashes) > 1:
                probs.append(f"{stream} seq {seq}: fork: {len(hashes)} events with different hashes")
            if seq > 0 and seq - 1 not in seqs:
                probs.append(f"{stream} seq {seq}: gap: seq {seq - 1} is missing")
            for h in sorted(hashes):
                r = info[(stream, seq, h)]
                if seq == 0:
                    if r["prev"] != ZERO_HASH:
                        probs.append(f"{stream} seq 0: prev is not the zero hash")
                    if r["action"] != "stream.opened":
                        probs.append(f"{stream} seq 0: is not stream.opened")
                elif seq - 1 in seqs and r["prev"] not in seqs[seq - 1]:
                    probs.append(f"{stream} seq {seq}: prev is not the hash of seq {seq - 1}")
                if closed_at is not None and seq > closed_at:
                    probs.append(f"{stream} seq {seq}: follows stream.closed at seq {closed_at}")
                if r["action"] == "stream.closed" and closed_at is None:
                    closed_at = seq
    return probs


# ---------------------------------------------------------------------------------------------
# §13 Merkle trees, §15 proofs
# ---------------------------------------------------------------------------------------------


def leaf_data(spec: Spec, tenant: str, stream: str, seq: int, event_hash: str, columns: Optional[str] = None) -> bytes:
    """§13.2; leaf v2 ends with the column digest (§13.2.1)."""
    t, s = tenant.encode("utf-8"), stream.encode("utf-8")
    data = (
        spec.leaf_domain
        + b"\x00"
        + len(t).to_bytes(4, "big")
        + t
        + len(s).to_bytes(4, "big")
        + s
        + seq.to_bytes(8, "big")
        + bytes.fromhex(event_hash)
    )
    if spec.leaf_version >= 2:
        if columns is None or not is_hex64(columns):
            raise VerifyError("a v2 leaf needs its column digest (64 hex)")
        data += bytes.fromhex(columns)
    return data


COLUMN_FIELDS = (
    "/id", "/time", "/stream", "/seq", "/prev", "/action", "/category", "/outcome",
    "/actor/type", "/actor/id", "/actor/name", "/actor/email",
    "/target/type", "/target/id", "/target/name",
    "/access/change", "/access/subject/type", "/access/subject/id", "/access/role", "/access/permission",
    "/access/resource/type", "/access/resource/id", "/access/grantedBy/id",
    "/context/ip", "/context/userAgent", "/context/requestId", "/context/sessionId", "/corrects/event",
)  # fmt: skip


def ip_bytes16(text: str) -> bytes:
    """An address as a store's IPv6 column holds it: IPv4 mapped into IPv6, zone index dropped."""
    addr = text.split("%", 1)[0]
    try:
        return ipaddress.IPv6Address("::ffff:" + str(ipaddress.IPv4Address(addr))).packed
    except ValueError:
        return ipaddress.IPv6Address(addr).packed


def column_digest_input(spec: Spec, record: dict) -> bytes:
    """§13.2.1 (leaf v2): the typed clear columns and the commitments of a record.

    Defined for records that pass §8.1; for any other record it still returns bytes (a value
    that is not a string counts as absent), so a hostile record gives a digest, never a crash."""
    personal = record.get("personal", [])
    personal = [p for p in personal if isinstance(p, str)] if isinstance(personal, list) else []
    u32 = lambda n: n.to_bytes(4, "big")  # noqa: E731
    out = [spec.columns_domain, b"\x00"]
    for ptr in COLUMN_FIELDS:
        ok, v = resolve(record, pointer_tokens(ptr) or [])
        if ptr == "/seq":
            out.append(int(v).to_bytes(8, "big") if is_int(v) and 0 <= v <= MAX_SAFE else bytes(8))
        elif ptr in personal:
            out.append(b"\x01")
        elif ptr == "/context/ip":
            try:
                out.append(b"\x00" + (u32(16) + ip_bytes16(v) if ok and isinstance(v, str) else u32(0)))
            except ValueError:  # not an address: the record fails §8.1 check 7 anyway
                out.append(b"\x00" + u32(0))
        else:
            b = v.encode("utf-8") if ok and isinstance(v, str) else b""
            out.append(b"\x00" + u32(len(b)) + b)
    out.append(u32(len(personal)))
    for p in personal:
        pb = p.encode("utf-8")
        v = resolve(record, pointer_tokens(p) or [])[1]
        vb = v.encode("utf-8") if isinstance(v, str) else b""
        out.append(u32(len(pb)) + pb + u32(len(vb)) + vb)
    return b"".join(out)


def column_digest(spec: Spec, record: dict) -> str:
    return sha256_hex(column_digest_input(spec, record))


def hash_leaf(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def hash_children(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 over leaf hashes (iterative over the peaks, no deep recursion)."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    # peaks: perfect subtrees left to right, one per set bit of n; root = right fold
    peaks: list[bytes] = []
    start = 0
    for bit in reversed(range(n.bit_length())):
        size = 1 << bit
        if n & size:
            level = leaves[start : start + size]
            while len(level) > 1:
                level = [hash_children(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            peaks.append(level[0])
            start += size
    r = peaks[-1]
    for p in reversed(peaks[:-1]):
        r = hash_children(p, r)
    return r


def inclusion_path(leaves: list[bytes], m: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), deepest sibling first."""
    n = len(leaves)
    if n <= 1:
        return []
    k = _split(n)
    if m < k:
        return inclusion_path(leaves[:k], m) + [mth(leaves[k:])]
    return inclusion_path(leaves[k:], m - k) + [mth(leaves[:k])]


def consistency_path(leaves: list[bytes], m: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(m, D[n])."""

    def sub(m: int, d: list[bytes], b: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if b else [mth(d)]
        k = _split(n)
        if m <= k:
            return sub(m, d[:k], b) + [mth(d[k:])]
        return sub(m - k, d[k:], False) + [mth(d[:k])]

    if m == 0 or m == len(leaves):
        return []
    return sub(m, leaves, True)


def verify_inclusion(leaf_hash: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2 as §15.3 writes it."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m: int, n: int, from_root: bytes, to_root: bytes, path: list[bytes]) -> Optional[str]:
    """RFC 9162 §2.1.4.2 as §15.3 writes it; None when it verifies."""
    if m > n:
        return "fromSize is larger than toSize"
    if m == 0 and from_root != sha256(b""):
        return "fromRoot must be the root of the empty tree"
    if m == n:
        return None if not path and from_root == to_root else "sizes are equal but the path or roots differ"
    if m == 0:
        return None if not path else "path must be empty from size 0"
    if not path:
        return "path is empty"
    if m & (m - 1) == 0:
        path = [from_root] + path
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return "path is too long"
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return "path is too short"
    if fr != from_root:
        return "path does not lead to fromRoot"
    if sr != to_root:
        return "path does not lead to toRoot"
    return None


# ---------------------------------------------------------------------------------------------
# §14 Keys and checkpoints
# ---------------------------------------------------------------------------------------------


def key_id(raw: bytes) -> str:
    """§14.2 `checkpointKeyId`."""
    return sha256_hex(raw)[:16]


class Keys:
    """Trusted (pinned) public keys by key id. A non-canonical key text is no key (§14.2)."""

    def __init__(self, texts: Iterable[str]):
        self.by_id: dict[str, bytes] = {}
        for t in texts:
            raw = b64url_decode(t)
            if raw is not None and len(raw) == 32:
                self.by_id[key_id(raw)] = raw

    def verify(self, kid: Any, signature: Any, message: bytes) -> Optional[str]:
        if not isinstance(kid, str) or kid not in self.by_id:
            return f"key {kid} is not among the trusted keys"
        sig = b64url_decode(signature)
        if sig is None or len(sig) != 64:
            return "signature must be the canonical unpadded base64url text of 64 bytes"
        try:
            Ed25519PublicKey.from_public_bytes(self.by_id[kid]).verify(sig, message)
        except InvalidSignature:
            return "signature does not verify with the key"
        return None


def public_key_from_seed(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(seed: bytes, message: bytes) -> str:
    return b64url_encode(Ed25519PrivateKey.from_private_bytes(seed).sign(message))


def parse_canonical_text(text: Any, what: str) -> tuple[Any, list[str]]:
    """A signed statement: JSON, exactly its own RFC 8785 form (§14.5 step 2, §16.5, §17.4)."""
    if not isinstance(text, str):
        return None, [f"{what} must be a string"]
    if has_lone_surrogate(text):
        return None, [f"{what} holds a lone surrogate"]
    cp = canonical_problem(text)
    if cp:
        return None, [f"{what} {cp}"]
    doc = parse_json(text)
    lim = limits_problem(doc)
    return doc, ([f"{what}: {lim}"] if lim else [])


def statement_problems(st: Any, spec: Spec) -> list[str]:
    """§14.1 the checkpoint statement."""
    probs = closed(st, ("v", "tenant", "time", "keyId", "partitions"), what="checkpoint statement")
    if probs:
        return probs
    if st["v"] != spec.statement_v or not is_int(st["v"]):
        probs.append(f"checkpoint statement v must be {spec.statement_v}")
    if not (isinstance(st["tenant"], str) and 1 <= utf16_len(st["tenant"]) <= 256):
        probs.append("checkpoint statement tenant must be 1-256 characters")
    tp = time_problem(st["time"])
    if tp:
        probs.append(f"checkpoint statement time {tp}")
    if not (isinstance(st["keyId"], str) and re.fullmatch(r"[0-9a-f]{16}", st["keyId"])):
        probs.append("checkpoint statement keyId must be 16 lower-case hex digits")
    parts = st["partitions"]
    if not isinstance(parts, list):
        return probs + ["checkpoint statement partitions must be an array"]
    last = -1
    for i, p in enumerate(parts):
        pp = closed(p, ("partition", "size", "root"), what=f"checkpoint statement partitions[{i}]")
        if pp:
            probs += pp
            continue
        if not (is_int(p["partition"]) and 0 <= p["partition"] <= 2**32 - 1):
            probs.append(f"partitions[{i}].partition must be 0 … 2^32-1")
        elif p["partition"] <= last:
            probs.append("partitions must be ascending by partition, without repeats")
        else:
            last = p["partition"]
        if not (is_int(p["size"]) and 1 <= p["size"] <= MAX_SAFE):
            probs.append(f"partitions[{i}].size must be 1 … 2^53-1")
        if not is_hex64(p["root"]):
            probs.append(f"partitions[{i}].root must be 64 lower-case hex digits")
    return probs


SIGNED_CHECKPOINT = ("id", "checkpoint", "signature")
WITNESS_EXTRA = ("type", "tenant", "time", "keyId", "publicKey")


def verify_checkpoint(signed: Any, keys: Keys, spec: Spec) -> tuple[Optional[dict], list[str]]:
    """§14.5 `verifyCheckpoint` (and the witness document of §14.7). Returns the statement."""
    witness = isinstance(signed, dict) and "type" in signed
    if witness:
        probs = closed(signed, SIGNED_CHECKPOINT + WITNESS_EXTRA, what="witness document")
    else:
        probs = closed(signed, SIGNED_CHECKPOINT, ("time", "keyId"), what="signed checkpoint")
    if probs:
        return None, probs
    text = signed["checkpoint"]
    if not isinstance(text, str) or has_lone_surrogate(text):
        return None, ["checkpoint must be a string of well-formed Unicode"]
    if signed["id"] != sha256_hex(text.encode("utf-8")):
        probs.append("id is not the SHA-256 of the checkpoint text")
    st, sp = parse_canonical_text(text, "checkpoint")
    if sp:
        return None, probs + sp
    sp = statement_problems(st, spec)
    if sp:
        return None, probs + sp
    # step 0: the copies agree with the statement
    for k in ("time", "keyId", "tenant"):
        if k in signed and signed[k] != st[k]:
            probs.append(f"{k} is not the {k} of the signed statement")
    if witness:
        if signed["type"] != "vigil.checkpoint":
            probs.append("type must be vigil.checkpoint")
        raw = b64url_decode(signed["publicKey"])
        if raw is None or len(raw) != 32:
            probs.append("publicKey must be the canonical unpadded base64url text of 32 bytes")
        elif key_id(raw) != st["keyId"]:
            probs.append("publicKey is not the key named by keyId")
    vp = keys.verify(st["keyId"], signed["signature"], spec.checkpoint_domain + b"\x00" + text.encode("utf-8"))
    if vp:
        probs.append(vp)
    return (st if not probs else None), probs


def head_of(st: dict, partition: Any) -> Optional[dict]:
    for p in st["partitions"]:
        if p["partition"] == partition:
            return p
    return None


def hex_list_problem(v: Any, what: str) -> Optional[str]:
    if not isinstance(v, list) or not all(is_hex64(x) for x in v):
        return f"{what} must be an array of 64 lower-case hex hashes"
    return None


def verify_inclusion_proof(proof: Any, keys: Keys, spec: Spec) -> list[str]:
    """§15.3 `verifyInclusionProof`."""
    probs = closed(
        proof,
        ("v", "eventId", "partition", "leafIndex", "treeSize", "leaf", "leafData", "leafHash", "auditPath", "root", "checkpoint"),
        ("record", "otherLeaves"),
        what="inclusion proof",
    )
    if isinstance(proof, dict) and "leaf" in proof:
        leaf_members = ("stream", "seq", "eventHash") + (("columns",) if spec.leaf_version >= 2 else ())
        probs += closed(proof["leaf"], leaf_members, what="inclusion proof leaf")
    if isinstance(proof, dict) and "otherLeaves" in proof:
        ol = proof["otherLeaves"]
        if not isinstance(ol, list):
            probs.append("otherLeaves must be an array")
        else:
            for i, o in enumerate(ol):
                probs += closed(o, ("partition", "leafIndex", "eventHash"), what=f"otherLeaves[{i}]")
    if probs:
        return probs
    if proof["v"] != spec.statement_v or not is_int(proof["v"]):
        probs.append(f"v must be {spec.statement_v}")
    st, cp = verify_checkpoint(proof["checkpoint"], keys, spec)
    if cp:
        return probs + [f"checkpoint: {p}" for p in cp]
    head = head_of(st, proof["partition"])
    if head is None:
        return probs + [f"the checkpoint states no tree for partition {proof['partition']}"]
    if head["size"] != proof["treeSize"] or head["root"] != proof["root"]:
        probs.append("treeSize and root are not the checkpoint's head for the partition")
    leaf = proof["leaf"]
    if not (isinstance(leaf["stream"], str) and not has_lone_surrogate(leaf["stream"]) and is_int(leaf["seq"]) and 0 <= leaf["seq"] <= MAX_SAFE and is_hex64(leaf["eventHash"])):
        return probs + ["leaf must have a stream, a seq and a 64-hex eventHash"]
    hp = hex_list_problem(proof["auditPath"], "auditPath")
    if hp or not is_hex64(proof["leafHash"]) or not isinstance(proof["leafData"], str):
        return probs + [hp or "leafHash and leafData must be hex"]
    if spec.leaf_version >= 2 and not is_hex64(leaf["columns"]):
        return probs + ["leaf.columns must be 64 lower-case hex digits"]
    data = leaf_data(spec, st["tenant"], leaf["stream"], int(leaf["seq"]), leaf["eventHash"], leaf.get("columns"))
    if data.hex() != proof["leafData"]:
        probs.append("leafData is not the leaf data of the checkpoint's tenant and the leaf")
    lh = hash_leaf(data)
    if lh.hex() != proof["leafHash"]:
        probs.append("leafHash is not the hash of the leaf data")
    li = proof["leafIndex"]
    if not (is_int(li) and li >= 0 and is_int(proof["treeSize"])):
        probs.append("leafIndex and treeSize must be whole numbers")
    elif not verify_inclusion(lh, int(li), int(head["size"]), [bytes.fromhex(x) for x in proof["auditPath"]], bytes.fromhex(head["root"])):
        probs.append("the audit path does not lead from the leaf to the checkpoint's root")
    if "record" in proof:
        rec = proof["record"]
        if not isinstance(rec, str) or has_lone_surrogate(rec):
            probs.append("record must be a string of well-formed Unicode")
        else:
            if sha256_hex(rec.encode("utf-8")) != leaf["eventHash"]:
                probs.append("record does not hash to leaf.eventHash")
            ch = check_sealed_event({"record": rec, "hash": leaf["eventHash"]}, spec, allow_reserved=True)
            probs += [f"record{p}" for p in ch.problems]
            r = ch.record
            if r is not None:
                if r["id"] != proof["eventId"]:
                    probs.append("record id is not eventId")
                if r["stream"] != leaf["stream"] or r["seq"] != leaf["seq"]:
                    probs.append("record stream and seq are not the leaf's")
                if spec.leaf_version >= 2 and column_digest(spec, r) != leaf["columns"]:
                    probs.append("the record's column digest is not leaf.columns")
    return probs


def verify_consistency_proof(proof: Any, keys: Keys, spec: Spec) -> list[str]:
    """§15.3 `verifyConsistencyProof`."""
    probs = closed(proof, ("v", "partition", "fromSize", "toSize", "fromRoot", "toRoot", "path"), ("from", "to"), what="consistency proof")
    if probs:
        return probs
    if proof["v"] != spec.statement_v or not is_int(proof["v"]):
        probs.append(f"v must be {spec.statement_v}")
    m, n = proof["fromSize"], proof["toSize"]
    if not (is_int(m) and is_int(n) and 0 <= m and 0 <= n <= MAX_SAFE):
        return probs + ["fromSize and toSize must be whole numbers"]
    if not (is_hex64(proof["fromRoot"]) and is_hex64(proof["toRoot"])):
        return probs + ["fromRoot and toRoot must be 64 lower-case hex digits"]
    hp = hex_list_problem(proof["path"], "path")
    if hp:
        return probs + [hp]
    tenants = set()
    for side, size, root in (("from", m, proof["fromRoot"]), ("to", n, proof["toRoot"])):
        if side not in proof:
            continue
        st, cp = verify_checkpoint(proof[side], keys, spec)
        if cp:
            probs += [f"{side}: {p}" for p in cp]
            continue
        tenants.add(st["tenant"])
        head = head_of(st, proof["partition"])
        hs, hr = (head["size"], head["root"]) if head else (0, EMPTY_ROOT)
        if hs != size or hr != root:
            probs.append(f"{side}: the checkpoint states size {hs} and another root for partition {proof['partition']}")
    if len(tenants) > 1:
        probs.append("from and to are checkpoints of different tenants")
    vp = verify_consistency(int(m), int(n), bytes.fromhex(proof["fromRoot"]), bytes.fromhex(proof["toRoot"]), [bytes.fromhex(x) for x in proof["path"]])
    if vp:
        probs.append(vp)
    return probs


# ---------------------------------------------------------------------------------------------
# §16 Subject bundles
# ---------------------------------------------------------------------------------------------

ROLE_ORDER = ("actor", "target", "accessSubject", "grantedBy", "correction")
ROLE_BASES = {"actor": "/actor", "target": "/target", "accessSubject": "/access/subject", "grantedBy": "/access/grantedBy"}
CONTEXT_PATHS = ("/context/ip", "/context/userAgent", "/context/sessionId", "/context/requestId")


def subject_paths(record: dict, roles: Iterable[str]) -> set[str]:
    """§16.3 `subjectPathsOf`: the committed paths that are the subject's, given the party roles
    the subject is proven to play (none: no path is the subject's)."""
    roles = [x for x in roles if x in ROLE_BASES]
    personal = record.get("personal", [])
    if not roles:
        return set()
    out = {p for p in personal for x in roles if p.startswith(ROLE_BASES[x] + "/")}
    if "actor" in roles:
        out |= {p for p in personal if p in CONTEXT_PATHS}
    others = [b for x, b in ROLE_BASES.items() if x not in roles]
    if not any(f"{b}/id" in personal or f"{b}/email" in personal for b in others):
        out |= {p for p in personal if p.startswith("/metadata/")}
    return out


def _names_subject(value: Any, subject_id: str, emails: set[str]) -> bool:
    return isinstance(value, str) and (value == subject_id or normal_email(value) in emails)


def verify_bundle(data: bytes, keys: Keys, spec: Spec) -> list[str]:
    """§16.5 `verifyBundle`. Every problem names its line (1-based) and, for an entry, the event id."""
    probs: list[str] = []
    if not data.endswith(b"\n"):
        return ["the bundle does not end with LF"]
    lines = data[:-1].split(b"\n")
    if len(lines) < 2:
        return ["a bundle has at least two lines"]
    docs: list[Any] = []
    for i, raw in enumerate(lines, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return [f"line {i}: is not UTF-8"]
        doc, pp = parse_canonical_text(text, f"line {i}:")
        if pp:
            return pp
        docs.append(doc)
    header, entries, sig = docs[0], docs[1:-1], docs[-1]
    # 3. header
    hp = closed(header, ("v", "format", "tenant", "createdAt", "subject", "checkpoint"), what="line 1: header")
    st = None
    subject_id, emails = None, set()
    if not hp:
        if header["v"] != spec.statement_v or not is_int(header["v"]):
            hp.append(f"line 1: header v must be {spec.statement_v}")
        if header["format"] != "vigil.bundle":
            hp.append("line 1: header format must be vigil.bundle")
        tp = time_problem(header["createdAt"])
        if tp:
            hp.append(f"line 1: header createdAt {tp}")
        sub = header["subject"]
        sp = closed(sub, ("id", "emails"), what="line 1: header subject")
        if not sp:
            em = sub["emails"]
            if not isinstance(sub["id"], str) or not sub["id"]:
                sp.append("line 1: subject.id must be a non-empty string")
            else:
                subject_id = sub["id"]
            if not (isinstance(em, list) and all(isinstance(e, str) for e in em)):
                sp.append("line 1: subject.emails must be a list of strings")
            else:
                for i, e in enumerate(em):
                    if e != normal_email(e):
                        sp.append(f"line 1: subject.emails[{i}] is not in its normal form (§17.2)")
                if not _sorted_unique(em):
                    sp.append("line 1: subject.emails must be sorted, without repeats")
                emails = set(em)
        hp += sp
        # a bundle's checkpoint carries no copy (§14.4, §16.2)
        cpp = closed(header["checkpoint"], SIGNED_CHECKPOINT, what="line 1: header checkpoint")
        if cpp:
            hp += cpp
        else:
            st, cp = verify_checkpoint(header["checkpoint"], keys, spec)
            hp += [f"line 1: checkpoint: {p}" for p in cp]
            if st is not None and st["tenant"] != header["tenant"]:
                hp.append("line 1: the checkpoint's tenant is not the header's")
    probs += hp
    # 4 and 5. entries
    seen_hashes: dict[str, int] = {}
    party_entries: dict[tuple[str, str], set[str]] = {}  # (id, hash) -> subject paths
    for k, e in enumerate(entries, 1):
        n = k + 1
        eid = "?"
        ep = closed(e, ("type", "record", "hash", "disclosures", "roles", "proof"), ("enrichment",), what="entry")
        if isinstance(e, dict) and isinstance(e.get("proof"), dict):
            ep += closed(e["proof"], ("partition", "leafIndex", "auditPath"), what="entry proof")
        elif isinstance(e, dict) and "proof" in e and e["proof"] is not None:
            ep.append("proof must be an object or null")
        if isinstance(e, dict) and "enrichment" in e:
            ep += closed(e["enrichment"], (), ("geo", "ua"), what="entry enrichment")
        if not ep and not isinstance(e["disclosures"], dict):
            ep.append("disclosures must be a JSON object")
        if ep:
            probs += [f"line {n}: {p}" for p in ep]
            continue
        if e["type"] != "event":
            ep.append("type must be event")
        if isinstance(e["hash"], str):
            if e["hash"] in seen_hashes:
                ep.append(f"repeats entry {seen_hashes[e['hash']]} (line {seen_hashes[e['hash']] + 1})")
            else:
                seen_hashes[e["hash"]] = k
        ch = check_sealed_event({"record": e["record"], "hash": e["hash"], "disclosures": e["disclosures"]}, spec, allow_reserved=True)
        ep += ch.problems
        r = ch.record
        if r is not None:
            eid = r["id"]
        roles = e["roles"]
        if not (isinstance(roles, list) and roles and all(isinstance(x, str) and x in ROLE_ORDER for x in roles)):
            ep.append(f"roles must be a non-empty list of {', '.join(ROLE_ORDER)}")
            roles = []
        elif [ROLE_ORDER.index(x) for x in roles] != sorted(set(ROLE_ORDER.index(x) for x in roles)):
            ep.append(f"roles must list {', '.join(ROLE_ORDER)} in that order, without repeats")
        pr = e["proof"]
        if pr is not None and r is not None and st is not None:
            head = head_of(st, pr["partition"])
            hp2 = hex_list_problem(pr["auditPath"], "proof auditPath")
            if head is None:
                ep.append(f"the checkpoint states no tree for partition {pr['partition']}")
            elif hp2:
                ep.append(hp2)
            elif not (is_int(pr["leafIndex"]) and 0 <= pr["leafIndex"] < head["size"]):
                ep.append("proof leafIndex is not inside the checkpoint's tree")
            else:
                cols = column_digest(spec, r) if spec.leaf_version >= 2 else None
                lh = hash_leaf(leaf_data(spec, st["tenant"], r["stream"], r["seq"], e["hash"], cols))
                if not verify_inclusion(lh, int(pr["leafIndex"]), head["size"], [bytes.fromhex(x) for x in pr["auditPath"]], bytes.fromhex(head["root"])):
                    ep.append("the proof does not lead from the event's leaf to the checkpoint's root")
        # 5. whose values: only once the disclosures opened their commitments (no problem above)
        if r is not None and not ch.problems and subject_id is not None:
            d = e["disclosures"]
            personal = r.get("personal", [])
            proven = []
            for role in (x for x in roles if x in ROLE_BASES):
                base = ROLE_BASES[role]
                by_id = f"{base}/id" in personal and f"{base}/id" in d and d[f"{base}/id"]["value"] == subject_id
                by_email = (
                    f"{base}/email" in personal and f"{base}/email" in d and isinstance(d[f"{base}/email"]["value"], str)
                    and normal_email(d[f"{base}/email"]["value"]) in emails
                )  # fmt: skip
                if by_id or by_email:
                    proven.append(role)
                else:
                    ep.append(f"roles says the subject is the {role}, but neither {base}/id nor {base}/email is disclosed as the subject's")
            allowed = subject_paths(r, proven)
            if r["stream"].startswith("vigil/admin/") and isinstance(r.get("corrects"), dict):
                # §16.3: a correction's corrected values are never the subject's by the metadata
                # rule, only by the correction rule below
                allowed = {p for p in allowed if not p.startswith("/metadata/corrected/")}
            if "correction" in roles:
                c = r.get("corrects")
                if not (r["stream"].startswith("vigil/admin/") and isinstance(c, dict)):
                    ep.append("roles says correction, but the record is not a correction on a vigil/admin/ stream")
                else:
                    md = r.get("metadata") if isinstance(r.get("metadata"), dict) else {}
                    corrected = md.get("corrected") if isinstance(md.get("corrected"), dict) else {}
                    naming = {
                        corrected_value_path(ptr) for ptr in corrected
                        if corrected_value_path(ptr) in d and _names_subject(d[corrected_value_path(ptr)]["value"], subject_id, emails)
                    }  # fmt: skip
                    target = party_entries.get((c.get("event"), c.get("hash")))
                    if target is None and not naming:
                        ep.append("the event it corrects (by id and hash) is no earlier entry of this bundle with a party role, and no corrected value names the subject")
                    allowed |= naming | {corrected_value_path(p) for p in (target or set())}
            for p in d:
                if p not in allowed:
                    ep.append(f"discloses {p}, which is not the subject's")
            enr = e.get("enrichment", {})
            for key, src in (("geo", "/context/ip"), ("ua", "/context/userAgent")):
                if key in enr and (src not in d or not isinstance(enr[key], dict)):
                    ep.append(f"enrichment.{key} is derived from {src}, which this entry does not disclose (or it is not an object)")
            if proven:
                party_entries[(r["id"], e["hash"])] = subject_paths(r, proven)
        probs += [f"line {n} (event {eid}): {p}" for p in ep]
    # 6. signature line
    last = len(lines)
    sp = closed(sig, ("signature", "statement"), what=f"line {last}: signature line")
    if sp:
        return probs + sp
    stmt, tp = parse_canonical_text(sig["statement"], f"line {last}: statement")
    if tp:
        return probs + tp
    sp = closed(stmt, ("v", "tenant", "createdAt", "keyId", "checkpoint", "entries", "bodyDigest"), what=f"line {last}: statement")
    if sp:
        return probs + sp
    if stmt["v"] != spec.statement_v or not is_int(stmt["v"]):
        probs.append(f"line {last}: statement v must be {spec.statement_v}")
    if not (isinstance(stmt["keyId"], str) and re.fullmatch(r"[0-9a-f]{16}", stmt["keyId"])):
        probs.append(f"line {last}: statement keyId must be 16 lower-case hex digits")
    if not is_hex64(stmt["bodyDigest"]):
        probs.append(f"line {last}: statement bodyDigest must be 64 lower-case hex digits")
    if isinstance(header, dict):
        if stmt["tenant"] != header.get("tenant") or stmt["createdAt"] != header.get("createdAt"):
            probs.append(f"line {last}: statement tenant and createdAt are not the header's")
        if not isinstance(header.get("checkpoint"), dict) or stmt["checkpoint"] != header["checkpoint"].get("id"):
            probs.append(f"line {last}: statement checkpoint is not the id of the header's checkpoint")
    if stmt["entries"] != len(entries) or not is_int(stmt["entries"]):
        probs.append(f"line {last}: statement entries is not the number of entry lines ({len(entries)})")
    body = data[: len(data) - len(lines[-1]) - 1]
    if stmt["bodyDigest"] != sha256_hex(body):
        probs.append(f"line {last}: bodyDigest is not the SHA-256 of the lines before it")
    # 7. signature
    vp = keys.verify(stmt["keyId"], sig["signature"], spec.bundle_domain + b"\x00" + sig["statement"].encode("utf-8"))
    if vp:
        probs.append(f"line {last}: {vp}")
    return probs


# ---------------------------------------------------------------------------------------------
# §17 Subject digests and erasure receipts
# ---------------------------------------------------------------------------------------------


# ECMAScript's String.prototype.trim set (WhiteSpace and LineTerminator); Python's str.strip()
# would also remove U+001C-U+001F and U+0085, so the set is spelled out.
_ES_SPACE = "\t\n\x0b\x0c\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def normal_email(text: str) -> str:
    """§17.2 the normal form of an address: ECMAScript white space trimmed, then Unicode full
    lower-casing without locale (str.lower implements Final_Sigma too), no normalisation form."""
    return text.strip(_ES_SPACE).lower()


def subject_digest(spec: Spec, key: bytes, kind: str, value: str) -> str:
    """§17.2 `subjectDigest`; an address in its normal form, an id exactly as given."""
    if kind == "email":
        value = normal_email(value)
    msg = spec.subject_domain + b"\x00" + kind.encode("ascii") + b"\x00" + value.encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _sorted_unique(xs: list[str]) -> bool:
    return all(utf16_key(a) < utf16_key(b) for a, b in zip(xs, xs[1:]))


def _text_1_to(v: Any, n: int) -> bool:
    return isinstance(v, str) and 1 <= utf16_len(v) <= n


def receipt_statement_problems(st: Any, spec: Spec) -> list[str]:
    """§17.3."""
    probs = closed(
        st, ("v", "type", "erasure", "tenant", "subject", "time", "keyId", "reason", "events", "counts"), ("holdOverride",), what="receipt"
    )
    if probs:
        return probs
    if st["v"] != spec.statement_v or not is_int(st["v"]):
        probs.append(f"receipt v must be {spec.statement_v}")
    if st["type"] != "vigil.erasure-receipt":
        probs.append("receipt type must be vigil.erasure-receipt")
    if not (isinstance(st["erasure"], str) and re.fullmatch(r"era_[0-9a-f]{16}", st["erasure"])):
        probs.append("receipt erasure must be era_ and 16 lower-case hex digits")
    if not _text_1_to(st["tenant"], 256):
        probs.append("receipt tenant must be a string of 1 to 256 characters")
    sub = st["subject"]
    if not (isinstance(sub, list) and sub and all(is_hex64(x) for x in sub) and _sorted_unique(sub)):
        probs.append("receipt subject must be sorted digests (64 hex), at least one, without repeats")
    tp = time_problem(st["time"])
    if tp:
        probs.append(f"receipt time {tp}")
    if not (isinstance(st["keyId"], str) and re.fullmatch(r"[0-9a-f]{16}", st["keyId"])):
        probs.append("receipt keyId must be 16 lower-case hex digits")
    if not _text_1_to(st["reason"], 1000):
        probs.append("receipt reason must be a string of 1 to 1000 characters")
    if "holdOverride" in st:
        ho = st["holdOverride"]
        hp = closed(ho, ("holds", "reason"), what="receipt holdOverride")
        if not hp:
            holds = ho["holds"]
            if not (isinstance(holds, list) and all(isinstance(h, str) and re.fullmatch(r"hold_[0-9a-f]{16}", h) for h in holds) and _sorted_unique(holds)):
                hp.append("receipt holdOverride.holds must be hold ids (hold_ and 16 lower-case hex digits), sorted, without repeats")
            if not _text_1_to(ho["reason"], 1000):
                hp.append("receipt holdOverride.reason must be a string of 1 to 1000 characters")
        probs += hp
    evs = st["events"]
    if not isinstance(evs, list):
        probs.append("receipt events must be an array")
        evs = []
    keys_seen = []
    for i, ev in enumerate(evs):
        ep = closed(ev, ("id", "hash", "paths"), what=f"receipt events[{i}]")
        if ep:
            probs += ep
            continue
        if not (isinstance(ev["id"], str) and UUID7.fullmatch(ev["id"])):
            probs.append(f"receipt events[{i}].id must be an event id (lower-case UUIDv7)")
            continue
        if not is_hex64(ev["hash"]):
            probs.append(f"receipt events[{i}].hash must be 64 lower-case hex digits")
            continue
        keys_seen.append((utf16_key(ev["id"]), ev["hash"]))
        ps = ev["paths"]
        if not (isinstance(ps, list) and ps and all(isinstance(p, str) and pointer_tokens(p) is not None for p in ps) and _sorted_unique(ps)):
            probs.append(f"receipt events[{i}].paths must be a non-empty sorted list of JSON pointers without repeats")
    if any(a >= b for a, b in zip(keys_seen, keys_seen[1:])):
        probs.append("receipt events must be sorted by id then hash, without repeats")
    cp = closed(st["counts"], ("events", "disclosures", "derivedColumns", "logRecords", "rejectedRecords"), ("alerts", "baselines"), what="receipt counts")
    if not cp:
        if not all(is_int(v) and 0 <= v <= MAX_SAFE for v in st["counts"].values()):
            cp.append("receipt counts must be integers 0 … 2^53-1")
        elif st["counts"]["events"] != len(evs):
            cp.append("receipt counts.events is not the length of events")
    return probs + cp


def verify_erasure_receipt(signed: Any, keys: Keys, spec: Spec) -> tuple[Optional[dict], list[str]]:
    """§17.4 `verifyErasureReceipt`."""
    probs = closed(signed, ("id", "receipt", "signature"), what="signed receipt")
    if probs:
        return None, probs
    text = signed["receipt"]
    if not isinstance(text, str) or has_lone_surrogate(text):
        return None, ["receipt must be a string of well-formed Unicode"]
    if signed["id"] != sha256_hex(text.encode("utf-8")):
        probs.append("id is not the SHA-256 of the receipt text")
    st, pp = parse_canonical_text(text, "receipt")
    if pp:
        return None, probs + pp
    probs += receipt_statement_problems(st, spec)
    if probs:
        return None, probs
    vp = keys.verify(st["keyId"], signed["signature"], spec.receipt_domain + b"\x00" + text.encode("utf-8"))
    if vp:
        probs.append(vp)
    return (st if not probs else None), probs


# ---------------------------------------------------------------------------------------------
# §18 Corrections
# ---------------------------------------------------------------------------------------------

_NOT_CORRECTABLE = ("v", "id", "stream", "seq", "prev", "personal", "corrects")


def correctable_problem(ptr: str) -> Optional[str]:
    """§18.1 `correctablePathProblem`: a pointer with at least one token, none empty, outside
    the members that identify, chain or describe the event."""
    toks = pointer_tokens(ptr)
    if toks is None:
        return "is not a JSON pointer (RFC 6901)"
    if "" in toks:
        return "names no field (an empty token)"
    if toks[0] in _NOT_CORRECTABLE:
        return "identifies, chains or describes the event itself and cannot be corrected"
    return None


def corrected_value_path(ptr: str) -> str:
    """§18.1 `correctedValuePath`: the pointer escaped as one token under /metadata/corrected."""
    return "/metadata/corrected/" + escape_token(ptr)


def correction_problems(record: dict, disclosures: dict) -> list[str]:
    """§18.1 rules of a correction event (its §8.1 checks run separately)."""
    probs = []
    if record.get("action") != "event.corrected":
        probs.append("action must be event.corrected")
    if record.get("category") != "data_change":
        probs.append("category must be data_change")
    c = record.get("corrects")
    if not isinstance(c, dict):
        return probs + ["corrects is required"]
    t = record.get("target")
    if not (isinstance(t, dict) and t.get("type") == "event" and t.get("id") == c.get("event")):
        probs.append('target must be {"type":"event","id":<the corrected id>}')
    md = record.get("metadata", {})
    corr = md.get("corrected") if isinstance(md, dict) else None
    if not isinstance(corr, dict):
        return probs + ["metadata.corrected must be an object"]
    for ptr in corr:
        cp = correctable_problem(ptr)
        if cp:
            probs.append(f"metadata.corrected {ptr}: {cp}")
        elif committable_problem(ptr) is None and corrected_value_path(ptr) not in record.get("personal", []):
            probs.append(f"metadata.corrected {ptr}: is personal, so it must be committed at {corrected_value_path(ptr)}")
    return probs


def opened_view(record: dict, disclosures: dict) -> dict:
    """The record with each disclosed value put back (an undisclosed one `null`) and without
    `personal`: the base that §18.2 applies corrections to."""
    view = json.loads(json.dumps(record))
    for p in view.pop("personal", []):
        toks = pointer_tokens(p) or []
        ok, _ = resolve(view, toks)
        if ok:
            resolve(view, toks[:-1])[1][toks[-1]] = disclosures[p]["value"] if p in disclosures else None
    return view


def apply_corrections(view: dict, corrections: list[dict]) -> dict:
    """§18.2 `applyCorrections` over opened views of the corrections (`opened_view`): oldest
    first (by time, then id), each pointer of `metadata.corrected` set, missing objects created."""
    out = json.loads(json.dumps(view))
    for corr in sorted(corrections, key=lambda c: (c["time"], utf16_key(c["id"]))):
        values = corr["metadata"]["corrected"]
        for ptr in sorted(values, key=utf16_key):
            if correctable_problem(ptr):
                continue  # a reader skips a member that is not a correctable pointer
            value = values[ptr]
            toks = pointer_tokens(ptr) or []
            cur = out
            for t in toks[:-1]:
                if not isinstance(cur.get(t), dict):
                    cur[t] = {}
                cur = cur[t]
            cur[toks[-1]] = value
    return out


# ---------------------------------------------------------------------------------------------
# The vector files (§11, §15.5, §16.6, §17, §18): every check the text asks an implementation to run
# ---------------------------------------------------------------------------------------------


class Report:
    """Collects named results; a vector run fails when any check fails."""

    def __init__(self) -> None:
        self.results: list[tuple[str, bool, str]] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, bool(ok), detail))
        return bool(ok)

    def equal(self, name: str, got: Any, want: Any) -> bool:
        return self.check(name, got == want, "" if got == want else f"got {got!r}, want {want!r}")

    def no_problems(self, name: str, problems: list[str]) -> bool:
        return self.check(name, not problems, "; ".join(problems))

    def refused(self, name: str, problems: list[str], because: Optional[str] = None) -> bool:
        """A document that must be refused, for `because` (text one problem must contain)."""
        if not problems:
            return self.check(name, False, "verified, but must be refused")
        norm = lambda t: t.replace(":", "")  # noqa: E731  (Vigil writes "<path> <message>")
        if because is not None and not any(norm(because) in norm(p) for p in problems):
            return self.check(name, False, f"refused for another reason: {'; '.join(problems)} (want: {because})")
        return self.check(name, True)

    @property
    def failures(self) -> list[tuple[str, bool, str]]:
        return [r for r in self.results if not r[1]]


def _strip(doc: dict, *members: str) -> dict:
    """A vector's document without the members the vector file adds beside it."""
    return {k: v for k, v in doc.items() if k not in members}


FLIPS = True  # the CLI's --no-flips turns the byte-flip checks off


def _flip_each_byte(text: bytes) -> Iterable[tuple[int, bytes]]:
    for i in range(len(text) if FLIPS else 0):
        b = bytearray(text)
        b[i] ^= 0x01
        yield i, bytes(b)


def _flips_all_fail(rep: Report, name: str, doc: Any, verify: Callable[[Any], list[str]]) -> None:
    """§15.5 (5): flip one byte anywhere in the document's JSON text and see it fail."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    survivors = []
    for i, flipped in _flip_each_byte(text):
        try:
            d = parse_json(flipped.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if not verify(d):
            survivors.append(i)
    rep.check(f"{name}: every one of {len(text)} single-byte flips fails", not survivors, f"flips at bytes {survivors[:10]} still verify")


def check_event_vectors(rep: Report, spec: Spec, vec: dict) -> list[dict]:
    """§11 "Testing an implementation", steps 1-8. Returns the sealed events."""
    n = spec.version
    rep.equal(f"v{n}: protocol", vec.get("protocol"), spec.version)
    known = {"protocol", "description", "zeroHash", "commitment", "canonical", "stream", "chainCases", "framing"}
    for k in vec:
        rep.check(f"v{n}: member {k} is one this verifier checks", k in known)
    if spec.version >= 2:
        rep.check(f"v{n}: has the framing vector (§9)", "framing" in vec)
    rep.equal(f"v{n}: zeroHash", vec.get("zeroHash"), ZERO_HASH)
    # 1. the commitment
    c = vec["commitment"]
    salt = b64url_decode(c["salt"])
    rep.check(f"v{n}: commitment salt is canonical base64url", salt is not None)
    if salt is not None:
        rep.equal(f"v{n}: commitment salt is SHA-256(vigil-vector:commitment)[0..16]", salt, sha256(b"vigil-vector:commitment")[:16])
        pre = commitment_preimage(spec, c["path"], c["value"], salt)
        rep.equal(f"v{n}: commitment preimage", pre.hex(), c["preimageHex"])
        rep.equal(f"v{n}: commitment", sha256_hex(pre), c["commitment"])
    # 2. RFC 8785
    for i, case in enumerate(vec["canonical"]):
        try:
            got = canonical(case["input"])
        except (ValueError, OverflowError) as e:
            got = f"<no form: {e}>"
        rep.equal(f"v{n}: canonical case {i + 1}", got, case["output"])
    events = vec["stream"]["events"]
    stream_id = vec["stream"]["id"]
    salt_n = 0
    prev_hash = ZERO_HASH
    head = None
    sealed_events = []
    for i, ev in enumerate(events):
        name = f"v{n}: event {i}"
        wire = {"record": ev["record"], "hash": ev["hash"]}
        if "disclosures" in ev:
            wire["disclosures"] = ev["disclosures"]
        sealed_events.append(wire)
        # 3. hash and link
        rep.equal(f"{name}: SHA-256 of the record bytes", sha256_hex(ev["record"].encode("utf-8")), ev["hash"])
        rep.equal(f"{name}: link.prev is the previous event's hash", ev["link"]["prev"], prev_hash)
        rep.equal(f"{name}: link.stream", ev["link"]["stream"], stream_id)
        rep.equal(f"{name}: link.seq", ev["link"]["seq"], i)
        # 4. canonical, and every check of §8.1 with the disclosures opened (5, first half)
        rep.equal(f"{name}: record is its own RFC 8785 form", canonical_problem(ev["record"]), None)
        ch = check_sealed_event(wire, spec)
        rep.no_problems(f"{name}: passes §8.1", ch.problems)
        r = ch.record
        if r is None:
            continue
        rep.equal(f"{name}: judgeLink", judge_link(head, r["seq"], r["prev"]), "next")
        head = {"seq": r["seq"], "hash": ev["hash"]}
        # 5. recover the input
        view = json.loads(json.dumps(r))
        for p, d in ev.get("disclosures", {}).items():
            toks = pointer_tokens(p) or []
            resolve(view, toks[:-1])[1][toks[-1]] = d["value"]
        for k in ("v", "stream", "seq", "prev", "personal"):
            view.pop(k, None)
        rep.equal(f"{name}: disclosures put back recover the input", canonical(view), canonical(_strip(ev["input"], "personal")))
        # 6. seal the input again with the disclosed salts; the salts are the fixed ones of §11
        paths = sorted(ev.get("disclosures", {}), key=utf16_key)
        fixed = []
        for p in paths:
            fixed.append(sha256(f"vigil-vector:{salt_n}".encode("ascii"))[:16])
            rep.equal(f"{name}: salt of {p} is salt {salt_n} of §11", b64url_decode(ev["disclosures"][p]["salt"]), fixed[-1])
            salt_n += 1
        it = iter(fixed)
        try:
            again = seal_event(spec, ev["input"], ev["link"], lambda: next(it))
        except VerifyError as e:
            rep.check(f"{name}: seals again", False, str(e))
        else:
            rep.equal(f"{name}: sealing the input gives the record", again["record"], ev["record"])
            rep.equal(f"{name}: sealing the input gives the hash", again["hash"], ev["hash"])
            rep.equal(f"{name}: sealing the input gives the disclosures", again.get("disclosures"), ev.get("disclosures"))
        # 8. ids
        ms = time_ms(r["time"])
        rep.equal(f"{name}: id is a UUIDv7 of its time", uuid7_ms(r["id"]), ms)
        rep.equal(f"{name}: id is derivedEventId(time, vigil-vector:e{i})", r["id"], derived_event_id(ms, f"vigil-vector:e{i}"))
        prev_hash = ev["hash"]
    boot = derived_event_id(time_ms("2026-11-23T08:59:59.000Z"), "vigil-vector:boot")
    rep.equal(f"v{n}: stream id is billing-api/host-7/<boot UUIDv7>", stream_id, f"billing-api/host-7/{boot}")
    # the offline stream checks of §8.2 find nothing wrong in the vector stream
    recs = [(check_sealed_event(w, spec).record, w["hash"]) for w in sealed_events]
    rep.no_problems(f"v{n}: the stream passes the offline checks of §8.2", check_streams([x for x in recs if x[0] is not None]))
    # 9. the sealed framing (§9)
    if "framing" in vec:
        check_framing_vector(rep, spec, vec["framing"], sealed_events, f"v{n}: framing")
    # 7. chain cases
    for case in vec["chainCases"]:
        rep.equal(f"v{n}: chain case {case['name']}", judge_link(case["head"], case["seq"], case["prev"]), case["verdict"])
    # tampering is caught: an edited record, a bad disclosure, a non-canonical record
    w = dict(sealed_events[1])
    rep.refused(f"v{n}: an edited record is refused", check_sealed_event(dict(w, record=w["record"].replace("success", "failure")), spec).problems, "/hash")
    d = json.loads(json.dumps(w["disclosures"]))
    d["/actor/email"]["value"] = "eve@example.eu"
    rep.refused(f"v{n}: an altered disclosure is refused", check_sealed_event(dict(w, disclosures=d), spec).problems, "does not open the commitment")
    spaced = w["record"].replace(',"category"', ', "category"')
    rep.refused(
        f"v{n}: a record with whitespace is refused as not canonical",
        check_sealed_event({"record": spaced, "hash": sha256_hex(spaced.encode("utf-8")), "disclosures": w["disclosures"]}, spec).problems,
        "RFC 8785",
    )
    return sealed_events


def check_framing_vector(rep: Report, spec: Spec, f: dict, events: list[dict], n: str) -> None:
    """§11 step 9: split the body, hash each record where it lies, write the body again."""
    rep.equal(f"{n} media type", f["mediaType"], SEALED_MEDIA_TYPE)
    body = bytes.fromhex(f["hex"])
    rep.equal(f"{n} text is the bytes", f["text"].encode("utf-8"), body)
    rep.equal(f"{n} sha256", sha256_hex(body), f["sha256"])
    lines, probs = parse_framed_body(body)
    rep.no_problems(f"{n} splits into lines of three fields", probs)
    rep.equal(f"{n} line count", len(lines), len(f["lines"]))
    for line, want, ev in zip(lines, f["lines"], events):
        m = f"{n} line {want['index']}"
        rep.equal(f"{m} index, record offset and length", (line.index, line.record_start, len(line.record)), (want["index"], want["recordStart"], want["recordLength"]))
        rep.equal(f"{m} record bytes at recordStart", body[want["recordStart"] : want["recordStart"] + want["recordLength"]], ev["record"].encode("utf-8"))
        rep.equal(f"{m} SHA-256 of the record where it lies", sha256_hex(body[want["recordStart"] : want["recordStart"] + want["recordLength"]]), want["hash"])
        rep.equal(f"{m} hash field", line.hash.decode("ascii"), ev["hash"])
        rep.equal(f"{m} disclosures length", len(line.disclosures), want["disclosuresLength"])
        wire, pp = framed_to_wire(line)
        rep.no_problems(f"{m} fields", pp)
        if wire is not None:
            rep.equal(f"{m} disclosures", wire.get("disclosures"), ev.get("disclosures"))
            rep.no_problems(f"{m} passes §8.1", check_sealed_event(wire, spec).problems)
    rep.equal(f"{n} written again byte for byte", b"".join(frame_sealed_event(e) for e in events).hex(), f["hex"])
    # a raw TAB in a line makes four fields; a CR before LF and blank lines are not part of it
    bad, pp = parse_framed_body(body.replace(b"\t", b"\t\t", 1))
    rep.check(f"{n} a line with an extra TAB is refused", bool(pp))
    crlf, pp = parse_framed_body(b"\n\r\n" + body.replace(b"\n", b"\r\n"))
    rep.check(f"{n} CR LF and blank lines read the same", not pp and [x.record for x in crlf] == [x.record for x in lines])


def check_merkle_vectors(rep: Report, spec: Spec, vec: dict, events: Optional[list[dict]]) -> tuple[Keys, bytes]:
    """§15.5 "Testing an implementation", steps 1-5."""
    n = f"merkle-v{spec.leaf_version}"
    known = {"protocol", "description", "tenant", "partition", "leaves", "roots", "emptyRoot", "inclusion", "consistency", "key", "checkpoints", "inclusionProof", "consistencyProof", "columnDigests"}
    for k in vec:
        rep.check(f"{n}: member {k} is one this verifier checks", k in known)
    tenant = vec["tenant"]
    leaf_hashes = []
    # §13.2.1 column digests (leaf v2)
    for i, c in enumerate(vec.get("columnDigests", [])):
        rec = parse_json(c["record"]) if isinstance(c["record"], str) else c["record"]
        rep.equal(f"{n}: column digest {i} input", column_digest_input(spec, rec).hex(), c["inputHex"])
        rep.equal(f"{n}: column digest {i}", column_digest(spec, rec), c["digest"])
        if events is not None and i < len(events):
            rep.equal(f"{n}: column digest {i} is of event {i}", canonical(rec), events[i]["record"])
    if spec.leaf_version >= 2:
        rep.check(f"{n}: has column digest vectors", bool(vec.get("columnDigests")))
    for lf in vec["leaves"]:
        i = lf["index"]
        if spec.leaf_version >= 2 and i < 4 and events is not None:
            rep.equal(f"{n}: leaf {i} columns is the column digest of event {i}", lf.get("columns"), column_digest(spec, parse_json(events[i]["record"])))
        elif spec.leaf_version >= 2:
            rep.equal(f"{n}: leaf {i} columns is SHA-256(vigil-vector:columns:{i})", lf.get("columns"), sha256_hex(f"vigil-vector:columns:{i}".encode()))
        data = leaf_data(spec, tenant, lf["stream"], lf["seq"], lf["eventHash"], lf.get("columns"))
        rep.equal(f"{n}: leaf {i} data", data.hex(), lf["leafData"])
        rep.equal(f"{n}: leaf {i} hash", hash_leaf(data).hex(), lf["leafHash"])
        leaf_hashes.append(hash_leaf(data))
        if i < 4 and events is not None:
            rep.equal(f"{n}: leaf {i} is event {i} of v{spec.version}.json", lf["eventHash"], events[i]["hash"])
            rep.equal(f"{n}: leaf {i} stream and seq are event {i}'s", (lf["stream"], lf["seq"]), (parse_json(events[i]["record"])["stream"], i))
        elif i >= 4:
            rep.equal(f"{n}: leaf {i} event hash is SHA-256(vigil-vector:leaf:{i})", lf["eventHash"], sha256_hex(f"vigil-vector:leaf:{i}".encode()))
    for size, root in enumerate(vec["roots"], 1):
        rep.equal(f"{n}: root of size {size}", mth(leaf_hashes[:size]).hex(), root)
    rep.equal(f"{n}: emptyRoot", vec["emptyRoot"], EMPTY_ROOT)
    rep.equal(f"{n}: MTH of no leaf", mth([]).hex(), EMPTY_ROOT)
    for c in vec["inclusion"]:
        nm = f"{n}: inclusion ({c['index']}, {c['size']})"
        path = inclusion_path(leaf_hashes[: c["size"]], c["index"])
        rep.equal(f"{nm} path", [p.hex() for p in path], c["proof"])
        root = bytes.fromhex(c["root"])
        rep.check(f"{nm} verifies", verify_inclusion(leaf_hashes[c["index"]], c["index"], c["size"], [bytes.fromhex(p) for p in c["proof"]], root))
        if c["proof"]:
            bad = [bytes.fromhex(p) for p in c["proof"]]
            bad[-1] = bytes([bad[-1][0] ^ 1]) + bad[-1][1:]
            rep.check(f"{nm} with a changed hash fails", not verify_inclusion(leaf_hashes[c["index"]], c["index"], c["size"], bad, root))
            rep.check(f"{nm} at another index fails", not verify_inclusion(leaf_hashes[c["index"]], c["index"] ^ 1, c["size"], [bytes.fromhex(p) for p in c["proof"]], root))
    for c in vec["consistency"]:
        nm = f"{n}: consistency {c['first']} -> {c['second']}"
        path = consistency_path(leaf_hashes[: c["second"]], c["first"])
        rep.equal(f"{nm} path", [p.hex() for p in path], c["proof"])
        args = (c["first"], c["second"], bytes.fromhex(c["firstRoot"]), bytes.fromhex(c["secondRoot"]))
        rep.equal(f"{nm} verifies", verify_consistency(*args, [bytes.fromhex(p) for p in c["proof"]]), None)
        bad = [bytes.fromhex(p) for p in c["proof"]]
        bad[0] = bytes([bad[0][0] ^ 1]) + bad[0][1:]
        rep.check(f"{nm} with a changed hash fails", verify_consistency(*args, bad) is not None)
    # every pair of sizes, from the leaves alone
    for size in range(1, len(leaf_hashes) + 1):
        for m in range(0, size + 1):
            p = consistency_path(leaf_hashes[:size], m)
            if verify_consistency(m, size, mth(leaf_hashes[:m]), mth(leaf_hashes[:size]), p) is not None:
                rep.check(f"{n}: generated consistency {m} -> {size} verifies", False)
        for i in range(size):
            if not verify_inclusion(leaf_hashes[i], i, size, inclusion_path(leaf_hashes[:size], i), mth(leaf_hashes[:size])):
                rep.check(f"{n}: generated inclusion ({i}, {size}) verifies", False)
    # 4. keys and checkpoints
    k = vec["key"]
    seed = bytes.fromhex(k["seedHex"])
    rep.equal(f"{n}: key seed is SHA-256(vigil-vector:checkpoint-key)", seed, sha256(b"vigil-vector:checkpoint-key"))
    pub = public_key_from_seed(seed)
    rep.equal(f"{n}: public key from the seed", b64url_encode(pub), k["publicKey"])
    rep.equal(f"{n}: key id", key_id(pub), k["keyId"])
    keys = Keys([k["publicKey"]])
    roots = {size: root for size, root in enumerate(vec["roots"], 1)}
    for i, cp in enumerate(vec["checkpoints"]):
        nm = f"{n}: checkpoint {i}"
        signed = _strip(cp, "signingInputHex")
        st = parse_json(signed["checkpoint"])
        rep.equal(f"{nm} statement is its RFC 8785 form", canonical(st), signed["checkpoint"])
        si = spec.checkpoint_domain + b"\x00" + signed["checkpoint"].encode("utf-8")
        rep.equal(f"{nm} signing input", si.hex(), cp["signingInputHex"])
        rep.equal(f"{nm} signature (Ed25519 is deterministic)", sign(seed, si), signed["signature"])
        got, probs = verify_checkpoint(signed, keys, spec)
        rep.no_problems(f"{nm} verifies with the public key alone", probs)
        if got:
            h = head_of(got, vec["partition"])
            rep.equal(f"{nm} states a root of the vector tree", h and roots.get(h["size"]), h and h["root"])
        rep.refused(f"{nm} with another key is refused", verify_checkpoint(signed, Keys([b64url_encode(sha256(b"x"))]), spec)[1], "not among the trusted keys")
        _flips_all_fail(rep, nm, signed, lambda d: verify_checkpoint(d, keys, spec)[1])
    # 5. proof documents
    rep.no_problems(f"{n}: inclusionProof verifies", verify_inclusion_proof(vec["inclusionProof"], keys, spec))
    rep.no_problems(f"{n}: consistencyProof verifies", verify_consistency_proof(vec["consistencyProof"], keys, spec))
    _flips_all_fail(rep, f"{n}: inclusionProof", vec["inclusionProof"], lambda d: verify_inclusion_proof(d, keys, spec))
    _flips_all_fail(rep, f"{n}: consistencyProof", vec["consistencyProof"], lambda d: verify_consistency_proof(d, keys, spec))
    if events is not None:
        rep.equal(f"{n}: inclusionProof record is event 1", vec["inclusionProof"]["record"], events[1]["record"])
    return keys, seed


def check_privacy_vectors(
    rep: Report, spec: Spec, vec: dict, bundle: Optional[bytes], keys: Keys, seed: Optional[bytes], events: Optional[list[dict]], n: str
) -> None:
    """§16.6, §17.2, §17.4, §18.2."""
    for k in vec:
        rep.check(f"{n}: member {k} is one this verifier checks", k in {"protocol", "description", "key", "subjectDigest", "bundle", "erasureReceipt", "correction"})
    rep.equal(f"{n}: key is the merkle vector key", key_id(b64url_decode(vec["key"]["publicKey"]) or b""), vec["key"]["keyId"])
    keys = Keys(list(keys.by_id and [b64url_encode(v) for v in keys.by_id.values()]) + [vec["key"]["publicKey"]])
    # §17.2 subject digests
    sd = vec["subjectDigest"]
    dkey = bytes.fromhex(sd["keyHex"])
    rep.equal(f"{n}: digest key is SHA-256(vigil-vector:subject-key)", dkey, sha256(b"vigil-vector:subject-key"))
    digests = []
    for c in sd["cases"]:
        got = subject_digest(spec, dkey, c["kind"], c["value"])
        if "normal" in c:
            rep.equal(f"{n}: normal form of {c['kind']} {c['value']!r}", normal_email(c["value"]) if c["kind"] == "email" else c["value"], c["normal"])
        digests.append(got)
        rep.equal(f"{n}: subject digest {c['kind']} {c['value']}", got, c["digest"])
    # §16 the bundle
    b = vec["bundle"]
    if bundle is None:
        rep.check(f"{n}: bundle file {b['file']} is present", False)
    else:
        rep.no_problems(f"{n}: bundle verifies with the public key alone", verify_bundle(bundle, keys, spec))
        lines = bundle[:-1].split(b"\n")
        sig = json.loads(lines[-1])
        rep.equal(f"{n}: bundle statement", sig["statement"], b["statement"])
        rep.equal(f"{n}: bundle bodyDigest", sha256_hex(bundle[: len(bundle) - len(lines[-1]) - 1]), b["bodyDigest"])
        si = spec.bundle_domain + b"\x00" + b["statement"].encode("utf-8")
        rep.equal(f"{n}: bundle signing input", si.hex(), b["signingInputHex"])
        rep.equal(f"{n}: bundle signature", sig["signature"], b["signature"])
        if seed is not None:
            rep.equal(f"{n}: bundle signature (Ed25519 is deterministic)", sign(seed, si), b["signature"])
        header = json.loads(lines[0])
        rep.equal(f"{n}: bundle subject", header["subject"], b["subject"])
        rep.equal(f"{n}: bundle createdAt", header["createdAt"], b["createdAt"])
        rep.equal(f"{n}: bundle checkpoint", header["checkpoint"]["id"], b["checkpoint"])
        entries = [json.loads(x) for x in lines[1:-1]]
        rep.equal(f"{n}: bundle entry count", len(entries), len(b["entries"]))
        for e, want in zip(entries, b["entries"]):
            r = json.loads(e["record"])
            rep.equal(f"{n}: bundle entry {want['eventId']}", (r["id"], e["proof"]["leafIndex"], e["roles"], sorted(e["disclosures"])), (want["eventId"], want["leafIndex"], want["roles"], want["disclosed"]))
            if events is not None:
                rep.check(f"{n}: bundle entry {want['eventId']} is an event of v{spec.version}.json", any(x["hash"] == e["hash"] and x["record"] == e["record"] for x in events))
        survivors = [i for i, f in _flip_each_byte(bundle) if not verify_bundle(f, keys, spec)]
        rep.check(f"{n}: every one of {len(bundle)} single-byte flips of the bundle fails", not survivors, f"flips at {survivors[:10]} still verify")
    # §17 the receipt
    er = vec["erasureReceipt"]
    signed = _strip(er, "signingInputHex")
    st, probs = verify_erasure_receipt(signed, keys, spec)
    rep.no_problems(f"{n}: erasure receipt verifies with the public key alone", probs)
    si = spec.receipt_domain + b"\x00" + signed["receipt"].encode("utf-8")
    rep.equal(f"{n}: erasure receipt signing input", si.hex(), er["signingInputHex"])
    if seed is not None:
        rep.equal(f"{n}: erasure receipt signature (Ed25519 is deterministic)", sign(seed, si), er["signature"])
    if st is not None:
        who = vec["bundle"]["subject"]
        want = [subject_digest(spec, dkey, "id", who["id"])] + [subject_digest(spec, dkey, "email", e) for e in who["emails"]]
        rep.equal(f"{n}: erasure receipt names the subject's digests", st["subject"], sorted(set(want), key=utf16_key))
        for ev in st["events"]:
            match = [x for x in (events or []) if x["hash"] == ev["hash"]]
            if events is not None and rep.check(f"{n}: receipt event {ev['id']} is a vector event", len(match) == 1):
                r = json.loads(match[0]["record"])
                rep.equal(f"{n}: receipt event {ev['id']} id", r["id"], ev["id"])
                rep.check(f"{n}: receipt event {ev['id']} erased paths are personal paths", set(ev["paths"]) <= set(r.get("personal", [])))
                # after the erasure the event still verifies, with those disclosures absent (§5.4)
                rest = {p: d for p, d in match[0].get("disclosures", {}).items() if p not in ev["paths"]}
                rep.no_problems(f"{n}: receipt event {ev['id']} verifies without the erased disclosures", check_sealed_event(dict(match[0], disclosures=rest), spec).problems)
    _flips_all_fail(rep, f"{n}: erasure receipt", signed, lambda d: verify_erasure_receipt(d, keys, spec)[1])
    # §18 the correction
    c = vec["correction"]
    seed_text = c["saltSeed"]
    counter = iter(range(64))
    try:
        sealed = seal_event(spec, c["input"], c["link"], lambda: sha256(seed_text.replace("<n>", str(next(counter))).encode())[:16])
    except VerifyError as e:
        rep.check(f"{n}: correction seals", False, str(e))
    else:
        rep.equal(f"{n}: correction record", sealed["record"], c["record"])
        rep.equal(f"{n}: correction hash", sealed["hash"], c["hash"])
        rep.equal(f"{n}: correction disclosures", sealed.get("disclosures"), c["disclosures"])
    wire = {"record": c["record"], "hash": c["hash"], "disclosures": c["disclosures"]}
    ch = check_sealed_event(wire, spec, allow_reserved=True)
    rep.no_problems(f"{n}: correction passes §8.1 (on Vigil's admin stream)", ch.problems)
    if ch.record is not None:
        rep.check(f"{n}: correction is on an admin stream", ch.record["stream"].startswith("vigil/admin/"))
        rep.no_problems(f"{n}: correction follows §18.1", correction_problems(ch.record, c["disclosures"]))
        if events is not None:
            target = [x for x in events if x["hash"] == ch.record["corrects"]["hash"]]
            if rep.check(f"{n}: correction names a vector event by id and hash", len(target) == 1):
                t = check_sealed_event(target[0], spec).record
                rep.equal(f"{n}: correction names the event's id", ch.record["corrects"]["event"], t["id"])
                view = apply_corrections(opened_view(t, target[0].get("disclosures", {})), [opened_view(ch.record, c["disclosures"])])
                rep.equal(f"{n}: corrected view", canonical(view), canonical(c["correctedView"]))


REFUSED_KINDS: dict[str, Callable[[Any, Keys, Spec], list[str]]] = {
    "checkpoint": lambda d, k, s: verify_checkpoint(d, k, s)[1],
    "inclusionProof": verify_inclusion_proof,
    "consistencyProof": verify_consistency_proof,
    "erasureReceipt": lambda d, k, s: verify_erasure_receipt(d, k, s)[1],
}


def check_refused_vectors(rep: Report, spec: Spec, vec: dict, keys: Optional[Keys], n: str) -> None:
    """§15.5 "Refused documents": each case refused, for the stated reason."""
    for case in vec["cases"]:
        k = Keys(case["keys"]) if "keys" in case else keys
        if k is None:
            rep.check(f"{n}: {case['name']}", False, "no trusted key: the merkle vector file is missing")
            continue
        if case["kind"] == "bundle":
            probs = verify_bundle(case["bundle"].encode("utf-8"), k, spec)
        elif case["kind"] in REFUSED_KINDS:
            probs = REFUSED_KINDS[case["kind"]](case["document"], k, spec)
        else:
            rep.check(f"{n}: {case['name']}", False, f"unknown kind {case['kind']}")
            continue
        rep.refused(f"{n}: {case['name']} ({case['section']})", probs, case["problem"])


def run_vectors(directory: str, record_version: Optional[int] = None, leaf_version: Optional[int] = None) -> tuple[Report, list[str]]:
    """Runs every vector file of a directory. The versions are parameters; by default the
    records are those of the newest `v<N>.json` and the leaves those of the newest
    `merkle-v<M>.json` (file names give the version of what they hold: a construction keeps
    its version while the record version moves on, §12)."""
    import os

    rep = Report()
    files_read: list[str] = []
    names = sorted(os.listdir(directory))

    def versions(pattern: str) -> list[int]:
        return sorted(int(m.group(1)) for f in names if (m := re.fullmatch(pattern, f)))

    def load(name: str) -> Optional[Any]:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            return None
        files_read.append(name)
        with open(path, "rb") as f:
            raw = f.read()
        return raw if name.endswith(".ndjson") else parse_json(raw.decode("utf-8"))

    ev_versions = versions(r"v(\d+)\.json")
    merkle_versions = versions(r"merkle-v(\d+)\.json")
    record_version = record_version or (ev_versions[-1] if ev_versions else None)
    if record_version is None:
        rep.check(f"{directory}: holds a v<N>.json vector file", False)
        return rep, files_read
    leaf_version = leaf_version or (merkle_versions[-1] if merkle_versions else 1)
    try:
        spec = spec_for(record_version, leaf_version)
    except VerifyError as e:
        rep.check("versions", False, str(e))
        return rep, files_read
    events = None
    ev = load(f"v{record_version}.json")
    if ev is not None:
        events = check_event_vectors(rep, spec, ev)
    keys: Optional[Keys] = None
    seed = None
    mk = load(f"merkle-v{leaf_version}.json")
    if mk is not None:
        rep.equal(f"merkle-v{leaf_version}: protocol", mk.get("protocol"), leaf_version)
        keys, seed = check_merkle_vectors(rep, spec, mk, events)
    for k in versions(r"privacy-v(\d+)\.json"):
        pv = load(f"privacy-v{k}.json")
        rep.equal(f"privacy-v{k}: protocol", pv.get("protocol"), k)
        bundle = load(pv["bundle"]["file"]) if pv.get("bundle") else None
        check_privacy_vectors(rep, spec, pv, bundle, keys or Keys([]), seed, events, f"privacy-v{k}")
    for k in versions(r"refused-v(\d+)\.json"):
        rf = load(f"refused-v{k}.json")
        rep.equal(f"refused-v{k}: protocol", rf.get("protocol"), k)
        check_refused_vectors(rep, spec, rf, keys, f"refused-v{k}")
    return rep, files_read


# ---------------------------------------------------------------------------------------------
# A live log, through its HTTP API (§15.4, §16, §17, §8.2)
# ---------------------------------------------------------------------------------------------


class Api:
    """A Vigil server's HTTP API (standard library only)."""

    def __init__(self, url: str, token: Optional[str]):
        self.url, self.token = url.rstrip("/"), token

    def request(self, method: str, path: str, body: Any = None, token: Optional[str] = None) -> tuple[int, bytes]:
        import urllib.error
        import urllib.request

        headers = {"Accept": "application/json"}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                return res.status, res.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method: str, path: str, body: Any = None, token: Optional[str] = None) -> Any:
        status, raw = self.request(method, path, body, token)
        if status >= 300:
            raise VerifyError(f"{method} {path}: HTTP {status}: {raw[:300].decode('utf-8', 'replace')}")
        return parse_json(raw.decode("utf-8"))


def item_parts(item: dict) -> tuple[Any, Any, dict, list[str], dict]:
    """(id, hash, opened event, flags, states) of a search item (§20.1: `hash`, `event`,
    `personal`, `server`); a server before §20 merged the server fields into the event."""
    if isinstance(item.get("event"), dict) and isinstance(item.get("server"), dict):
        ev = item["event"]
        return ev.get("id"), item.get("hash"), ev, list(item["server"].get("flags") or []), item.get("personal") or {}
    return item.get("id"), item.get("hash"), item, list(item.get("flags") or []), {}


def verify_item(item: dict, spec: Spec) -> list[str]:
    """§20.5: an item asked for with include=record,disclosures, checked from the item alone."""
    probs: list[str] = []
    rec, h = item.get("record"), item.get("hash")
    if not isinstance(rec, str) or has_lone_surrogate(rec) or not is_hex64(h):
        return ["item: record and hash must be present (include=record)"]
    if sha256_hex(rec.encode("utf-8")) != h:
        probs.append("item: SHA-256 of record is not hash")
    w = {"record": rec, "hash": h}
    if item.get("disclosures"):
        w["disclosures"] = item["disclosures"]
    ch = check_sealed_event(w, spec, allow_reserved=True)
    probs += [f"item{p}" for p in ch.problems if "RFC 8785" not in p]
    if ch.record is not None:
        listed = ch.record.get("personal", [])
        states = item.get("personal") or {}
        if sorted(states) != sorted(listed):
            probs.append("item: personal states are not the record's personal list")
        for p, state in states.items():
            if state == "disclosed" and p not in (item.get("disclosures") or {}):
                probs.append(f"item: {p} is disclosed but has no disclosure")
            if state not in ("disclosed", "pseudonymised", "erased", "withheld"):
                probs.append(f"item: {p} has an unknown state {state!r}")
    return probs


def verify_live(
    api: Api,
    keys: Keys,
    spec: Spec,
    admin_key: Optional[str] = None,
    subject: Optional[str] = None,
    emails: Iterable[str] = (),
    wait: float = 0,
) -> tuple[list[str], list[str]]:
    """Verifies what a server holds for the key's tenant, trusting nothing it says about itself.

    Every checkpoint (§14.5) with the pinned keys; a consistency proof (§15.3) between each two
    successive checkpoint sizes of every partition; every event found by search through its
    inclusion proof (§15.3), whose record is checked as in §8.1; the chain of every stream
    (§8.2), a break counting only where the stored event is flagged for it (§6.2); with an
    admin key, the erasure receipts (§17.4) and, for a subject, the bundle export (§16.5).
    An event not yet covered by a checkpoint is retried for up to `wait` seconds.
    Returns (failures, information)."""
    import time as _time
    from urllib.parse import quote

    fail: list[str] = []
    info: list[str] = []
    # checkpoints
    checkpoints: list[tuple[dict, dict]] = []
    cursor = None
    while True:
        page = api.json("GET", "/v1/checkpoints?limit=100" + (f"&cursor={quote(cursor)}" if cursor else ""))
        for cp in page.get("checkpoints", []):
            st, probs = verify_checkpoint(cp, keys, spec)
            if probs:
                fail += [f"checkpoint {cp.get('id')}: {p}" for p in probs]
            else:
                checkpoints.append((cp, st))
        cursor = page.get("nextCursor")
        if not cursor:
            break
    info.append(f"{len(checkpoints)} checkpoints verify with the pinned keys")
    tenants = {st["tenant"] for _, st in checkpoints}
    if len(tenants) > 1:
        fail.append(f"checkpoints of several tenants: {sorted(tenants)}")
    # every event, through its inclusion proof
    records: list[tuple[dict, str]] = []
    items: dict[tuple[str, str], dict] = {}
    leaves: dict[tuple[int, int], str] = {}
    by_position: dict[tuple[str, int], list[tuple[str, str, set[str]]]] = {}
    integrity: set[tuple[str, Any, Any]] = set()
    pending: list[tuple[str, str, str, str]] = []
    known_checkpoints = {cp["id"] for cp, _ in checkpoints}

    def take(item: dict) -> bool:
        """Checks one search result through its inclusion proof; False: no checkpoint covers it yet."""
        nonlocal fail
        eid, h, view, item_flags, _states = item_parts(item)
        if "record" in item:
            fail.extend(f"event {eid}: {p}" for p in verify_item(item, spec))
        status, raw = api.request("GET", f"/v1/proofs/inclusion?event={quote(str(eid))}&hash={quote(str(h))}", token=admin_key)
        if status == 409:
            return False  # stored, not yet covered by a checkpoint (§15.4)
        if status != 200:
            fail.append(f"event {eid}: no inclusion proof (HTTP {status})")
            return True
        proof = parse_json(raw.decode("utf-8"))
        probs = verify_inclusion_proof(proof, keys, spec)
        if not probs and proof["checkpoint"]["id"] not in known_checkpoints:
            # signed after the list was read: verified with the proof, kept for the consistency checks
            signed = {k: proof["checkpoint"][k] for k in SIGNED_CHECKPOINT}
            st, _ = verify_checkpoint(signed, keys, spec)
            checkpoints.append((signed, st))
            known_checkpoints.add(signed["id"])
        if not probs and proof["leaf"]["eventHash"] != h:
            probs.append("the proof is for another hash than the search result's")
        if not probs and "record" not in proof:
            info.append(f"event {eid}: no record (removed by retention); its leaf still verifies")
        # A record that is not its own RFC 8785 form is refused by §8.1, unless the consumer
        # flagged it `noncanonical` at ingest (§4, §6.2): judged below, with its integrity event.
        form = [p for p in probs if "RFC 8785" in p]
        if form and len(form) == len(probs) and "noncanonical" in item_flags:
            pending.append((eid, h, "noncanonical", f"event {eid}: {form[0]}"))
            probs = []
        fail += [f"event {eid}: {p}" for p in probs]
        if probs or "record" not in proof:
            return True
        pos = (proof["partition"], proof["leafIndex"])
        if pos in leaves and leaves[pos] != h:
            fail.append(f"partition {pos[0]} leaf {pos[1]}: two events claim it")
        leaves[pos] = h
        r = parse_json(proof["record"])
        records.append((r, h))
        items[(eid, h)] = item
        by_position.setdefault((r["stream"], r["seq"]), []).append((eid, h, set(item_flags)))
        if r["action"].startswith("integrity.") and isinstance(r.get("metadata"), dict):
            integrity.add((r["action"], r["metadata"].get("eventId"), r["metadata"].get("eventHash")))
        # the search result is the record opened: its clear members must be the record's
        personal_tops = {(pointer_tokens(p) or [""])[0] for p in r.get("personal", [])}
        for k, v in r.items():
            if k not in personal_tops and k != "personal" and k in view and view[k] != v:
                fail.append(f"event {eid}: the search result's {k} is not the record's")
        return True

    waiting: list[dict] = []
    cursor = None
    while True:
        # Search hides a restricted subject's events (GDPR Art. 18) unless an admin key asks for
        # them, which the server records; without them a stream shows holes where they are.
        listing = "/v1/events?limit=500&order=asc&original=true&include=record,disclosures" + ("&includeRestricted=true" if admin_key else "")
        page = api.json("GET", listing + (f"&cursor={quote(cursor)}" if cursor else ""), token=admin_key)
        waiting += [item for item in page.get("events", []) if not take(item)]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    deadline = _time.monotonic() + wait
    while waiting and _time.monotonic() < deadline:
        _time.sleep(0.5)
        waiting = [item for item in waiting if not take(item)]
    unproved = len(waiting)
    info.append(f"{len(records)} events verify through their inclusion proofs; {unproved} not covered by a checkpoint yet")
    # consistency between successive sizes of each partition
    by_part: dict[int, dict[int, tuple[str, str]]] = {}
    for cp, st in checkpoints:
        for h in st["partitions"]:
            seen = by_part.setdefault(h["partition"], {})
            if h["size"] in seen and seen[h["size"]][1] != h["root"]:
                fail.append(f"partition {h['partition']}: two checkpoints state size {h['size']} with different roots")
            seen.setdefault(h["size"], (cp["id"], h["root"]))
    proofs = 0
    for part, sizes in sorted(by_part.items()):
        ordered = sorted(sizes.items())
        for (m, (from_id, _)), (n, (to_id, _)) in zip(ordered, ordered[1:]):
            proof = api.json("GET", f"/v1/proofs/consistency?partition={part}&from={from_id}&to={to_id}")
            probs = verify_consistency_proof(proof, keys, spec)
            if not probs and (proof.get("fromSize"), proof.get("toSize")) != (m, n):
                probs = [f"answers sizes {proof.get('fromSize')} -> {proof.get('toSize')}, not {m} -> {n}"]
            if not probs and not ("from" in proof and "to" in proof and proof["from"]["id"] == from_id and proof["to"]["id"] == to_id):
                probs = ["does not carry the two checkpoints asked for"]
            fail += [f"consistency partition {part} {m} -> {n}: {p}" for p in probs]
            proofs += 1
    info.append(f"{proofs} consistency proofs between successive checkpoints verify")
    # chains (§8.2): a break the consumer recorded at ingest, with the flag on the event and a
    # signed integrity event naming it (§6.2), is information; any other is a failure (§19.2)
    for p in check_streams(records):
        stream, _, rest = p.partition(" seq ")
        seq = int(rest.split(":")[0])
        kind = "gap" if ": gap:" in p else "fork" if ": fork:" in p else "after_close" if "stream.closed" in p else None
        flagged = [(eid, h) for eid, h, f in by_position.get((stream, seq), []) if kind in f] if kind else []
        if flagged:
            for eid, h in flagged:
                pending.append((eid, h, kind, p))
        else:
            fail.append(p + ("" if admin_key else " (without --admin-key, a restricted subject's events are not listed)"))
    actions = {"gap": "integrity.chain_gap", "fork": "integrity.chain_fork", "after_close": "integrity.event_after_close", "noncanonical": "integrity.noncanonical_record"}
    for eid, h, flag, what in pending:
        if (actions[flag], eid, h) in integrity:
            info.append(f"{what} (recorded at ingest: flag {flag} and {actions[flag]})")
        else:
            fail.append(f"{what}: flagged {flag} but no {actions[flag]} event names it (edited)")
    # corrections (§18.2): the default view of a corrected event is its original view with the
    # corrections recorded on Vigil's admin streams applied, oldest first
    corrections: dict[tuple[str, str], list[dict]] = {}
    for r, h in records:
        c = r.get("corrects")
        if isinstance(c, dict) and r["stream"].startswith("vigil/admin/") and (r["id"], h) in items:
            corrections.setdefault((c.get("event"), c.get("hash")), []).append(item_parts(items[(r["id"], h)])[2])
    for (eid, h), corrs in corrections.items():
        original = item_parts(items[(eid, h)])[2] if (eid, h) in items else None
        if original is None:
            fail.append(f"correction of {eid}: the corrected event was not found by search")
            continue
        page = api.json("GET", "/v1/events?limit=500&order=asc&stream=" + quote(original["stream"]) + ("&includeRestricted=true" if admin_key else ""), token=admin_key)
        shown = [item_parts(x)[2] for x in page.get("events", []) if item_parts(x)[:2] == (eid, h)]
        want = apply_corrections(original, corrs)
        if not shown or any(shown[0].get(k) != want[k] for k in want if k not in ("flags", "position", "receivedAt", "source")):
            fail.append(f"event {eid}: the corrected view is not the original with its {len(corrs)} correction(s) applied")
    info.append(f"{sum(len(c) for c in corrections.values())} corrections checked against the corrected views")
    # privacy documents
    if admin_key:
        page = api.json("GET", "/v1/admin/erasures", token=admin_key)
        receipts = page.get("erasures", []) if isinstance(page, dict) else []
        for doc in receipts:
            signed = doc.get("receipt") if isinstance(doc, dict) else None
            st, probs = verify_erasure_receipt(signed, keys, spec)
            fail += [f"erasure receipt {doc.get('erasure')}: {p}" for p in probs]
            for ev in st["events"] if st else []:
                item = items.get((ev["id"], ev["hash"]))
                if item is None:
                    info.append(f"erasure receipt {signed['id']}: event {ev['id']} was not found by search")
                    continue
                # §17.4: none of its listed paths has a disclosure any more (null, state erased)
                _, _, view, _, states = item_parts(item)
                for p in ev["paths"]:
                    ok, v = resolve(view, pointer_tokens(p) or [])
                    if (ok and v is not None) or states.get(p, "erased") != "erased" or p in (item.get("disclosures") or {}):
                        fail.append(f"erasure receipt {signed['id']}: event {ev['id']} still discloses {p}")
        info.append(f"{len(receipts or [])} erasure receipts checked")
        if subject:
            status, raw = api.request("POST", "/v1/admin/subjects/export", {"subject": subject, "emails": list(emails), "format": "bundle"}, token=admin_key)
            if status != 200:
                fail.append(f"bundle export: HTTP {status}: {raw[:300].decode('utf-8', 'replace')}")
            else:
                probs = verify_bundle(raw, keys, spec)
                fail += [f"bundle: {p}" for p in probs]
                entries = raw.count(b"\n") - 2
                info.append(f"the bundle of {subject} verifies ({entries} events)" if not probs else "bundle refused")
    return fail, info


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def verify_witness_dir(directory: str, keys: Keys, spec: Spec) -> tuple[list[str], int]:
    """§14.7 directory witness: `<dir>/<tenant>/<time with ':' as '-'>_<id>.json`, each a witness
    document that verifies with the pinned keys; two checkpoints stating one size of a tree must
    state one root (trees only grow, §14.6)."""
    import os

    probs: list[str] = []
    heads: dict[tuple[str, int, int], str] = {}
    count = 0
    for tenant in sorted(os.listdir(directory)):
        tdir = os.path.join(directory, tenant)
        if not os.path.isdir(tdir):
            continue
        for name in sorted(os.listdir(tdir)):
            count += 1
            with open(os.path.join(tdir, name), encoding="utf-8") as f:
                try:
                    doc = parse_json(f.read())
                except ValueError as e:
                    probs.append(f"{tenant}/{name}: is not JSON ({e})")
                    continue
            st, pp = verify_checkpoint(doc, keys, spec)
            probs += [f"{tenant}/{name}: {p}" for p in pp]
            if st is None:
                continue
            if "type" not in doc:
                probs.append(f"{tenant}/{name}: is not a witness document (no type)")
            if st["tenant"] != tenant or name != f"{st['time'].replace(':', '-')}_{doc['id']}.json":
                probs.append(f"{tenant}/{name}: the name is not <tenant>/<time>_<id>.json of its statement")
            for h in st["partitions"]:
                k = (st["tenant"], h["partition"], h["size"])
                if heads.setdefault(k, h["root"]) != h["root"]:
                    probs.append(f"{tenant}/{name}: partition {h['partition']} size {h['size']} has another root than an earlier checkpoint")
    return probs, count


def new_event_id(ms: int) -> str:
    """A random UUIDv7 of the time `ms` (RFC 9562 §5.7)."""
    import os

    b = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    b[6] = 0x70 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    x = b.hex()
    return f"{x[0:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"


def seal_stream(spec: Spec, stream: str, inputs: Iterable[str], out: Any, framed: bool = False) -> None:
    """A producer (§4, §6.1): seals each input line as the next event of a new stream, with
    fresh 16-byte salts; `id` and `time` default to now."""
    import os
    import time as _time

    prev, seq = ZERO_HASH, 0
    for line in inputs:
        if not line.strip():
            continue
        inp = parse_json(line)
        ms = int(_time.time() * 1000)
        if "time" not in inp:
            inp["time"] = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)
        inp.setdefault("id", new_event_id(ms))
        sealed = seal_event(spec, inp, {"stream": stream, "seq": seq, "prev": prev}, lambda: os.urandom(16))
        out.write(frame_sealed_event(sealed).decode("utf-8") if framed else json.dumps(sealed, ensure_ascii=False) + "\n")
        prev, seq = sealed["hash"], seq + 1


def _read_keys(texts: list[str]) -> Keys:
    """Pinned keys: base64url texts, or files holding one per line or GET /v1/keys/checkpoint JSON."""
    import os

    out: list[str] = []
    for t in texts:
        if os.path.exists(t):
            with open(t, encoding="utf-8") as f:
                body = f.read().strip()
            if body.startswith("{"):
                out += [k["publicKey"] for k in json.loads(body).get("keys", [])]
            else:
                out += [x.strip() for x in body.splitlines() if x.strip()]
        else:
            out.append(t)
    return Keys(out)


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return parse_json(f.read())


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="vigil_verify", description="Verify Vigil protocol documents (PROTOCOL.md).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("vectors", help="reproduce every vector file of a directory")
    p.add_argument("dir")
    p.add_argument("--version", type=int, help="the records' protocol version (default: the newest v<N>.json)")
    p.add_argument("--leaf-version", type=int, help="the leaf construction (default: the newest merkle-v<M>.json)")
    p.add_argument("--json", action="store_true", help="print every result as JSON")
    p.add_argument("--verbose", "-v", action="store_true", help="print passing checks too")
    p.add_argument("--no-flips", action="store_true", help="skip flipping every byte of the signed documents")
    for name, hlp in (
        ("events", "sealed events, one JSON object per line (NDJSON); --streams adds the offline chain checks of §8.2"),
        ("checkpoint", "a signed checkpoint or witness document (§14)"),
        ("inclusion", "an inclusion proof document (§15.1)"),
        ("consistency", "a consistency proof document (§15.2)"),
        ("bundle", "a subject bundle (§16)"),
        ("receipt", "a signed erasure receipt (§17)"),
    ):
        q = sub.add_parser(name, help=hlp)
        q.add_argument("file")
        q.add_argument("--key", action="append", default=[], help="a pinned public key (base64url) or a file of keys")
        q.add_argument("--version", type=int, default=1, help="the records' protocol version")
        q.add_argument("--leaf-version", type=int, default=1, help="the leaf construction (§13.2)")
        if name == "events":
            q.add_argument("--streams", action="store_true")
            q.add_argument("--framed", action="store_true", help=f"the file is a body of the sealed framing ({SEALED_MEDIA_TYPE}, §9)")
            q.add_argument("--allow-reserved", action="store_true", help="events of Vigil's own streams (vigil/, key/)")
    q = sub.add_parser("witness", help="a directory witness (§14.7): every file verified, the trees compared")
    q.add_argument("dir")
    q.add_argument("--key", action="append", default=[], required=True)
    q.add_argument("--version", type=int, default=1, help="the records' protocol version")
    q.add_argument("--leaf-version", type=int, default=1, help="the leaf construction (§13.2)")
    q = sub.add_parser("canonical", help="RFC 8785 form of each JSON value on stdin (one per line), one per line")
    q = sub.add_parser("seal", help="seal event inputs (NDJSON on stdin) as one new stream; sealed events on stdout")
    q.add_argument("--stream", required=True)
    q.add_argument("--framed", action="store_true", help=f"write a body of the sealed framing ({SEALED_MEDIA_TYPE}, §9) instead of NDJSON")
    q.add_argument("--version", type=int, default=1, help="the records' protocol version")
    q.add_argument("--leaf-version", type=int, default=1, help="the leaf construction (§13.2)")
    q = sub.add_parser("live", help="a running server: checkpoints, consistency, every event's proof, chains, receipts, a bundle")
    q.add_argument("url")
    q.add_argument("--key", action="append", default=[], required=True, help="a pinned public key (base64url) or a file of keys")
    q.add_argument("--query-key", required=True, help="an API key with scope query")
    q.add_argument("--admin-key", help="an API key with scope admin: erasure receipts and a subject's bundle")
    q.add_argument("--subject", help="a person id whose bundle to export and verify (needs --admin-key)")
    q.add_argument("--email", action="append", default=[])
    q.add_argument("--wait", type=float, default=0, help="seconds to wait for events not yet covered by a checkpoint")
    q.add_argument("--version", type=int, default=1, help="the records' protocol version")
    q.add_argument("--leaf-version", type=int, default=1, help="the leaf construction (§13.2)")
    q.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if Ed25519PublicKey is None:
        print("vigil_verify: the Python module cryptography is missing (Debian: apt-get install python3-cryptography)", file=sys.stderr)
        return 2
    if a.cmd == "vectors":
        global FLIPS
        FLIPS = not a.no_flips
        rep, files = run_vectors(a.dir, a.version, a.leaf_version)
        if a.json:
            print(json.dumps({"files": files, "results": [{"name": n, "ok": ok, "detail": d} for n, ok, d in rep.results]}, ensure_ascii=False))
        else:
            for n, ok, d in rep.results:
                if a.verbose or not ok:
                    print(f"{'ok  ' if ok else 'FAIL'} {n}{(': ' + d) if d else ''}")
            print(f"{len(rep.results) - len(rep.failures)} of {len(rep.results)} checks passed; files: {', '.join(files)}")
        return 1 if rep.failures or not files else 0
    spec = spec_for(getattr(a, "version", 1), getattr(a, "leaf_version", 1))
    keys = _read_keys(getattr(a, "key", []))
    problems: list[str] = []
    if a.cmd == "witness":
        if not os.path.isdir(a.dir):
            print(f"vigil_verify: {a.dir}: not a directory (a directory witness, §14.7)", file=sys.stderr)
            return 2
        problems, count = verify_witness_dir(a.dir, keys, spec)
        print(f"{count} checkpoints read")
        for x in problems:
            print(x)
        print("verified" if not problems else f"REFUSED: {len(problems)} problem(s)")
        return 1 if problems else 0
    if a.cmd == "canonical":
        for line in sys.stdin:
            if line.strip():
                try:
                    print(canonical(parse_json(line)))
                except (ValueError, OverflowError) as e:
                    print(f"! {e}")
        return 0
    if a.cmd == "seal":
        seal_stream(spec, a.stream, sys.stdin, sys.stdout, a.framed)
        return 0
    if a.cmd == "live":
        fail, info = verify_live(Api(a.url, a.query_key), keys, spec, a.admin_key, a.subject, a.email, a.wait)
        if a.json:
            print(json.dumps({"ok": not fail, "failures": fail, "information": info}, ensure_ascii=False))
        else:
            for x in fail:
                print(f"FAIL {x}")
            for x in info:
                print(f"info {x}")
            print("verified" if not fail else f"FAILED: {len(fail)} problem(s)")
        return 1 if fail else 0
    if a.cmd == "events":
        recs = []
        with open(a.file, "rb") as fb:
            body = fb.read()
        if a.framed:
            lines, problems = parse_framed_body(body)
            wires = []
            for ln in lines:
                w, pp = framed_to_wire(ln)
                problems += [f"event {ln.index}: {x}" for x in pp]
                wires.append(w)
        else:
            wires = [parse_json(x) for x in body.decode("utf-8").splitlines() if x.strip()]
        for i, w in enumerate(wires):
            if w is not None:
                ch = check_sealed_event(w, spec, allow_reserved=a.allow_reserved)
                problems += [f"event {i}: {x}" for x in ch.problems]
                if ch.record is not None:
                    recs.append((ch.record, sha256_hex(ch.record_text.encode("utf-8"))))
        if a.streams:
            problems += check_streams(recs)
        ok_count = len(recs)
        print(f"{ok_count} events read")
    elif a.cmd == "checkpoint":
        problems = verify_checkpoint(_read_json(a.file), keys, spec)[1]
    elif a.cmd == "inclusion":
        problems = verify_inclusion_proof(_read_json(a.file), keys, spec)
    elif a.cmd == "consistency":
        problems = verify_consistency_proof(_read_json(a.file), keys, spec)
    elif a.cmd == "bundle":
        with open(a.file, "rb") as f:
            problems = verify_bundle(f.read(), keys, spec)
    elif a.cmd == "receipt":
        problems = verify_erasure_receipt(_read_json(a.file), keys, spec)[1]
    for x in problems:
        print(x)
    print("verified" if not problems else f"REFUSED: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
