#!/usr/bin/env python3
"""Independent check of docs/protocol-vectors.json against docs/protocol.md.

Written from the document, not from the Rust code: HPKE comes from `pyhpke`, X25519,
ChaCha20-Poly1305 and HKDF from `cryptography`. It re-derives the key pairs from their IKM,
opens every sealed body (auth mode), runs the documented opening procedure on the invalid
bodies and compares error codes, re-derives the heartbeat keys, verifies every datagram and
replays the sliding-window steps. For the messages over HTTPS (§7) it opens the sealed check-in,
acknowledgement, fetch, work and re-enrolment bodies, compares their JSON plaintexts, checks
them with its own implementation of the shape checks of §7.2 and checks that the invalid
payloads give the documented code and field. For printer policies (§7.8, §7.9) it recomputes
the secret verifiers with Python's hmac, opens the apply_settings work, the secrets sealed in it,
the acknowledgement with per-setting results and the check-in proving the secrets, and checks
the refused apply_settings data and sealed secrets. For sessions (§2.8) it opens the sealed
check-in that opens the session, exports the session id and secrets from its HPKE context,
opens the up session body and the down answer with its own ChaCha20-Poly1305 and nonce
construction, runs the documented session checks (structure, session known, freshness,
authentication, window of 64) on the refused bodies and replays the window steps.

    pip install pyhpke cryptography
    python3 tools/check_protocol_vectors.py docs/protocol-vectors.json

Exits 0 when everything matches, 1 on any mismatch, 2 on bad usage.
"""

import hashlib
import hmac
import json
import math
import sys
import unicodedata

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

# ---- constants from docs/protocol.md ----------------------------------------------------------
MAGIC = b"PFS"
VERSION = 1
SUITE_ID = 1
HEADER_LEN = 46
ENC_LEN = 32
TAG_LEN = 16
MIN_BODY_LEN = HEADER_LEN + ENC_LEN + TAG_LEN
MAX_BODY_LEN = 65536
INFO = b"printfleet sealed body v1"
KEY_ID_LABEL = b"printfleet/key-id/v1"
MESSAGE_TYPES = {
    0x01: "sealed_to_device",
    0x02: "check_in",
    0x03: "check_in_ack",
    0x04: "fetch",
    0x05: "work",
    0x06: "re_enrol",
}
MAX_SKEW_MS = 300_000

HB_VERSION = 1
HB_LEN = 35
HB_SALT = b"printfleet/heartbeat/v1"
HB_KEY_INFO = b"printfleet/heartbeat/key"
HB_UP_INFO = b"printfleet/heartbeat/up"
HB_DOWN_INFO = b"printfleet/heartbeat/down"
HB_KEY_ID_INFO = b"printfleet/heartbeat/key-id"
REQUEST_TYPES = {0x01: "heartbeat", 0x02: "keepalive"}
ANSWER_TYPES = {0x81: "nothing", 0x82: "come_fetch"}
WINDOW = 1024

SUITE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305)

failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print(f"MISMATCH: {what}")


def h(s):
    return bytes.fromhex(s)


def clamp(sk):
    b = bytearray(sk)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return bytes(b)


def key_id(pk):
    return hashlib.sha256(KEY_ID_LABEL + pk).digest()[:8]


# ---- sealed bodies -----------------------------------------------------------------------------
class Opener:
    """The opening procedure of docs/protocol.md, with a naive replay set."""

    def __init__(self):
        self.seen = set()

    def open(self, body, recipient_sk, recipient_pk, sender_pk, now_ms):
        if len(body) > MAX_BODY_LEN:
            return "oversized", None
        if len(body) < 5:
            return "truncated", None
        if body[0:3] != MAGIC:
            return "bad_magic", None
        if body[3] != VERSION:
            return "bad_version", None
        if body[4] != SUITE_ID:
            return "unknown_suite", None
        if len(body) < MIN_BODY_LEN:
            return "truncated", None
        if body[5] not in MESSAGE_TYPES:
            return "unknown_type", None
        sender_kid, recipient_kid = body[6:14], body[14:22]
        ts = int.from_bytes(body[22:30], "big")
        msg_id = body[30:46]
        if recipient_kid != key_id(recipient_pk):
            return "wrong_recipient", None
        if sender_kid != key_id(sender_pk):
            return "wrong_sender", None
        if not (now_ms - MAX_SKEW_MS <= ts <= now_ms + MAX_SKEW_MS):
            return "stale", None
        header, enc, ct = body[:HEADER_LEN], body[HEADER_LEN:HEADER_LEN + ENC_LEN], body[HEADER_LEN + ENC_LEN:]
        try:
            skr = SUITE.kem.deserialize_private_key(recipient_sk)
            pks = SUITE.kem.deserialize_public_key(sender_pk)
            ctx = SUITE.create_recipient_context(enc, skr, info=INFO, pks=pks)
            pt = ctx.open(ct, aad=header)
        except Exception:  # noqa: BLE001 - any HPKE failure is "tampered"
            return "tampered", None
        if msg_id in self.seen:
            return "replayed", None
        self.seen.add(msg_id)
        return None, pt


def check_keys(sealed):
    keys = {}
    for who, k in sealed["keys"].items():
        kp = SUITE.kem.derive_key_pair(h(k["ikm_hex"]))
        pk = kp.public_key.to_public_bytes()
        sk = kp.private_key.to_private_bytes()
        check(pk.hex() == k["public_key_hex"], f"{who}: DeriveKeyPair public key")
        check(clamp(sk).hex() == k["private_key_hex"], f"{who}: DeriveKeyPair private key (clamped)")
        x = X25519PrivateKey.from_private_bytes(h(k["private_key_hex"])).public_key().public_bytes_raw()
        check(x.hex() == k["public_key_hex"], f"{who}: X25519(private) == public")
        check(key_id(pk).hex() == k["key_id_hex"], f"{who}: key id")
        keys[who] = (h(k["private_key_hex"]), pk)
    return keys


def check_sealed(sealed):
    s = sealed["suite"]
    check((s["id"], s["hpke_mode"], s["kem_id"], s["kdf_id"], s["aead_id"]) == (1, 2, 0x20, 1, 3), "suite ids")
    check(h(sealed["info_hex"]) == INFO, "info label")
    check(h(sealed["key_id_label_hex"]) == KEY_ID_LABEL, "key id label")
    check(sealed["max_skew_ms"] == MAX_SKEW_MS and sealed["max_body_len"] == MAX_BODY_LEN, "limits")
    keys = check_keys(sealed)
    check(all(v["header"]["message_type"] == 0x01 for v in sealed["valid"]), "sealed.valid are sealed_to_device")
    for v in sealed["valid"]:
        name = v["name"]
        body = check_body_fields(v, keys)
        sk, pk = keys[v["recipient"]]
        err, pt = Opener().open(body, sk, pk, keys[v["sender"]][1], v["now_ms"])
        check(err is None and pt is not None and pt.hex() == v["plaintext_hex"], f"{name}: opens to the plaintext ({err})")
        if pt:
            n = pt[0]
            purpose, content = pt[1:1 + n], pt[1 + n:]
            check(purpose.decode("ascii") == v["payload"]["purpose"] and content.hex() == v["payload"]["content_hex"], f"{name}: payload")
        print(f"ok   sealed body {name}: {len(body)} bytes, plaintext {pt!r}")
    for v in sealed["invalid"]:
        name = v["name"]
        sk, pk = keys[v["recipient"]]
        opener = Opener()
        args = (h(v["body_hex"]), sk, pk, keys[v["sender"]][1], v["now_ms"])
        err, _ = opener.open(*args)
        if v["open_twice"]:
            check(err is None, f"{name}: first open succeeds")
            err, _ = opener.open(*args)
        check(err == v["expected_error"], f"{name}: expected {v['expected_error']}, got {err}")
        print(f"ok   invalid body {name}: {err}")
    # Not in the JSON (too big): one byte over the limit.
    err, _ = Opener().open(b"\0" * (MAX_BODY_LEN + 1), *keys["printer"], keys["server"][1], 0)
    check(err == "oversized", "oversized body")
    return keys


def check_body_fields(v, keys):
    """The header fields and the split of a valid body (sealed.valid and messages.valid)."""
    name = v["name"]
    body = h(v["body_hex"])
    hd = v["header"]
    check(body[:HEADER_LEN].hex() == v["header_hex"], f"{name}: header is the first 46 bytes")
    check(body[0:3] == h(hd["magic_hex"]) == MAGIC, f"{name}: magic")
    check((body[3], body[4], body[5]) == (hd["version"], hd["suite"], hd["message_type"]), f"{name}: version/suite/type")
    check(body[6:14].hex() == hd["sender_key_id_hex"] == key_id(keys[v["sender"]][1]).hex(), f"{name}: sender key id")
    check(body[14:22].hex() == hd["recipient_key_id_hex"] == key_id(keys[v["recipient"]][1]).hex(), f"{name}: recipient key id")
    check(int.from_bytes(body[22:30], "big") == hd["timestamp_ms"], f"{name}: timestamp")
    check(body[30:46].hex() == hd["message_id_hex"], f"{name}: message id")
    check(body[46:78].hex() == v["enc_hex"] and body[78:].hex() == v["ciphertext_hex"], f"{name}: enc/ciphertext split")
    check(len(body) == MIN_BODY_LEN + len(h(v["plaintext_hex"])), f"{name}: length")
    return body


# ---- heartbeat ---------------------------------------------------------------------------------
def hkdf(ikm, salt, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


class Window:
    def __init__(self):
        self.highest = 0
        self.slots = [False] * WINDOW

    def accept(self, c):
        if c == 0:
            return "bad_counter"
        if c <= self.highest:
            if self.highest - c >= WINDOW:
                return "too_old"
            if self.slots[c % WINDOW]:
                return "replayed"
        if c > self.highest:
            if c - self.highest >= WINDOW:
                self.slots = [False] * WINDOW
            else:
                for x in range(self.highest + 1, c + 1):
                    self.slots[x % WINDOW] = False
            self.highest = c
        self.slots[c % WINDOW] = True
        return "accepted"

    def to_bytes(self):
        bits = bytearray(WINDOW // 8)
        for s, on in enumerate(self.slots):
            if on:
                bits[s // 8] |= 1 << (s % 8)
        return bytes([1]) + self.highest.to_bytes(8, "big") + bytes(bits)


def nonce(counter):
    return b"\0\0\0\0" + counter.to_bytes(8, "big")


def open_datagram(d, key, key_id_, window=None, expected=None):
    """Server-side request opening (window given) or printer-side answer opening (expected
    counter given), in the order of docs/protocol.md."""
    if len(d) == 0:
        return "bad_length", None
    if d[0] != HB_VERSION:
        return "bad_version", None
    if len(d) != HB_LEN:
        return "bad_length", None
    counter = int.from_bytes(d[9:17], "big")
    if counter == 0:
        return "bad_counter", None
    if d[1:9] != key_id_:
        return "wrong_key", None
    if expected is not None and counter != expected:
        return "unexpected_counter", None
    if window is not None:
        probe = Window()
        probe.highest, probe.slots = window.highest, list(window.slots)
        r = probe.accept(counter)
        if r != "accepted":
            return r, None
    try:
        pt = ChaCha20Poly1305(key).decrypt(nonce(counter), d[17:], d[:17])
    except Exception:  # noqa: BLE001 - InvalidTag
        return "tampered", None
    if window is not None:
        window.accept(counter)
    return None, (counter, pt)


def check_heartbeat(hb):
    secret, pid = h(hb["enrolment_secret_hex"]), h(hb["printer_id_hex"])
    check(h(hb["salt_hex"]) == HB_SALT and h(hb["heartbeat_key_info_hex"]) == HB_KEY_INFO, "heartbeat labels")
    check(h(hb["up_key_info_hex"]) == HB_UP_INFO and h(hb["down_key_info_hex"]) == HB_DOWN_INFO and h(hb["key_id_info_hex"]) == HB_KEY_ID_INFO, "direction labels")
    hk = hkdf(secret, HB_SALT, HB_KEY_INFO + pid, 32)
    check(hk.hex() == hb["heartbeat_key_hex"], "heartbeat key")
    up, down = hkdf(hk, None, HB_UP_INFO, 32), hkdf(hk, None, HB_DOWN_INFO, 32)
    kid = hkdf(hk, None, HB_KEY_ID_INFO, 8)
    check(up.hex() == hb["up_key_hex"] and down.hex() == hb["down_key_hex"], "direction keys")
    check(kid.hex() == hb["key_id_hex"], "heartbeat key id")
    window = Window()
    for x in hb["exchanges"]:
        req, ans = h(x["request_hex"]), h(x["answer_hex"])
        err, got = open_datagram(req, up, kid, window)
        check(err is None and got == (x["counter"], bytes([x["request_type"], x["request_flags"]])), f"request {x['counter']}: {err}")
        check(got is not None and got[1][0] in REQUEST_TYPES, f"request {x['counter']}: known type")
        err, got = open_datagram(ans, down, kid, expected=x["counter"])
        check(err is None and got == (x["counter"], bytes([x["answer_type"], x["answer_flags"]])), f"answer {x['counter']}: {err}")
        check(got is not None and got[1][0] in ANSWER_TYPES, f"answer {x['counter']}: known type")
        check(len(ans) <= len(req), f"answer {x['counter']} not larger than its request")
        # Directions do not reflect.
        check(open_datagram(req, down, kid, expected=x["counter"])[0] == "tampered", f"request {x['counter']} does not open as an answer")
        check(open_datagram(ans, down, kid, expected=x["counter"] + 1)[0] == "unexpected_counter", f"answer {x['counter']}: counter bound")
        kind = REQUEST_TYPES.get(x["request_type"]), ANSWER_TYPES.get(x["answer_type"])
        print(f"ok   heartbeat counter {x['counter']}: {kind[0]} ({len(req)} bytes) -> {kind[1]} ({len(ans)} bytes)")
    for v in hb["invalid_requests"]:
        w = Window()
        d = h(v["datagram_hex"])
        err, _ = open_datagram(d, up, kid, w)
        if v["open_twice"]:
            check(err is None, f"{v['name']}: first open succeeds")
            err, _ = open_datagram(d, up, kid, w)
        check(err == v["expected_error"], f"{v['name']}: expected {v['expected_error']}, got {err}")
        print(f"ok   invalid datagram {v['name']}: {err}")
    w = Window()
    for step in hb["window"]["steps"]:
        got = w.accept(step["counter"])
        check(got == step["expected"], f"window counter {step['counter']}: expected {step['expected']}, got {got}")
    check(w.to_bytes().hex() == hb["window"]["final_state_hex"], "window serialization")
    print(f"ok   replay window: {len(hb['window']['steps'])} steps, final state {len(w.to_bytes())} bytes")


# ---- messages over HTTPS (§7) -----------------------------------------------------------------
MAX_TEXT_LEN = 200
MAX_TOKEN_LEN = 64
MAX_SETTING_ID_LEN = 128
MAX_SETTING_TEXT_LEN = 255
MAX_SUPPLIES = 32
MAX_EVENTS = 64
MAX_SETTINGS = 512
MAX_WORK_ITEMS = 32
MAX_WAIT_MS = 25_000
MAX_JSON_SAFE_INTEGER = 2**53 - 1
MAX_NESTING = 127
SUPPLY_KINDS = {"toner", "ink", "drum", "fuser", "transfer_belt", "waste_toner", "staples"}
SUPPLY_STATES = {"ok", "low", "very_low", "empty", "missing"}
EVENT_KINDS = {"jam", "error", "cover_open", "supply_replaced", "supply_low", "restarted"}
ACK_STATUSES = {"stored", "duplicate", "refused"}
OUTCOMES = {"done", "failed", "refused"}
METERS = ["total_impressions", "mono_impressions", "colour_impressions", "simplex_sheets", "duplex_sheets",
          "scans", "faxes_sent", "faxes_received", "jams"]
LOWER_HEX = set("0123456789abcdef")
SETTING_OUTCOMES = {"refused", "failed"}
MAX_APPLY_SETTINGS = 256
MAX_PEM_LEN = 65_536
PEM_START = "-----BEGIN "
SECRET_VERIFIER_LABEL = b"printfleet secret verifier v1"


class Refused(Exception):
    def __init__(self, code, field=""):
        super().__init__(code, field)
        self.code, self.field = code, field


class Obj(dict):
    """A JSON object as parsed: a dict, plus its members in document order (repeats included)."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.pairs = pairs


def _no_constant(_):
    raise Refused("bad_payload")  # NaN, Infinity: not JSON


def _float(s):
    f = float(s)
    if math.isinf(f):
        raise Refused("bad_payload")  # 1e400: not a number any double holds
    return f


def _int(s):
    if s == "-0":
        return -0.0  # read as a float (not an integer of any type), as serde_json does
    _float(s)  # 400 digits: too large for a double
    return int(s)


def member(path, name):
    return f"{path}.{name}" if path else name


def index(path, i):
    return f"{path}[{i}]"


def parse(plaintext):
    """Step 1 of §7.2, the syntax: UTF-8, JSON, no lone surrogate, nesting. Field empty."""
    try:
        m = json.loads(plaintext.decode("utf-8"), object_pairs_hook=Obj, parse_constant=_no_constant,
                       parse_float=_float, parse_int=_int)
    except (UnicodeError, ValueError, RecursionError):
        raise Refused("bad_payload") from None
    stack = [(m, 1)]  # (value, nesting level if it is a list or an object)
    while stack:
        v, level = stack.pop()
        if isinstance(v, (Obj, list)) and level > MAX_NESTING:
            raise Refused("bad_payload")
        if isinstance(v, Obj):
            strings = [k for k, _ in v.pairs]
            stack.extend((x, level + 1) for _, x in v.pairs)
        elif type(v) is list:
            strings = []
            stack.extend((x, level + 1) for x in v)
        else:
            strings = [v] if type(v) is str else []
        for s in strings:
            try:
                s.encode("utf-8")
            except UnicodeError:
                raise Refused("bad_payload") from None  # \ud800: not Unicode
    return m


def repeated_names(v, path):
    """Step 3: no object repeats a member name (document order, the outer object first)."""
    if isinstance(v, Obj):
        seen = set()
        for k, _ in v.pairs:
            if k in seen:
                raise Refused("bad_payload", member(path, k))
            seen.add(k)
        for k, x in v.pairs:
            repeated_names(x, member(path, k))
    elif type(v) is list:
        for i, x in enumerate(v):
            repeated_names(x, index(path, i))


# The schema of §7.3-§7.4 and §6.1. A kind is a Struct, a ListOf, SETTINGS, an Enum, or a
# predicate on a value (the types; ANY for work data).
class Struct:
    def __init__(self, *members):
        self.members = members  # (name, required, kind), in the order of the tables

    def get(self, name):
        return next((m for m in self.members if m[0] == name), None)


class ListOf:
    def __init__(self, entry):
        self.entry = entry


class Enum:
    def __init__(self, values):
        self.values = values


class MapOf:
    """An object whose every member's value is `entry` (per-setting results)."""

    def __init__(self, entry):
        self.entry = entry


SETTINGS = "settings"


def is_u64(v):
    return type(v) is int and 0 <= v < 2**64


def is_u8(v):
    return type(v) is int and 0 <= v < 2**8


def is_i64(v):
    return type(v) is int and -(2**63) <= v < 2**63


def is_bool(v):
    return type(v) is bool


def is_str(v):
    return type(v) is str


def ANY(_):
    return True


CAPABILITIES = Struct(*((k, True, is_bool) for k in ("colour", "duplex", "scan", "fax")))
DEVICE_INFO = Struct(("name", True, is_str), ("model", True, is_str), ("serial", True, is_str),
                     ("firmware", True, is_str), ("region", False, is_str), ("language", False, is_str),
                     ("capabilities", True, CAPABILITIES))
METERS_SPEC = Struct(*((m, m == "total_impressions", is_u64) for m in METERS))
SUPPLY = Struct(("id", True, is_str), ("kind", True, Enum(SUPPLY_KINDS)), ("colour", False, is_str),
                ("level_percent", False, is_u8), ("capacity_pages", False, is_u64), ("pages", False, is_u64),
                ("part_number", False, is_str), ("state", True, Enum(SUPPLY_STATES)))
EVENT = Struct(("at_ms", True, is_u64), ("kind", True, Enum(EVENT_KINDS)), ("code", False, is_str),
               ("detail", False, is_str))
CHECK_IN = Struct(("seq", True, is_u64), ("taken_at_ms", True, is_u64), ("info", False, DEVICE_INFO),
                  ("meters", False, METERS_SPEC), ("supplies", False, ListOf(SUPPLY)),
                  ("events", False, ListOf(EVENT)), ("settings", False, SETTINGS))
CHECK_IN_ACK = Struct(("reply_to", True, is_str), ("seq", True, is_u64), ("status", True, Enum(ACK_STATUSES)),
                      ("code", False, is_str), ("field", False, is_str), ("message", False, is_str))
SETTING_RESULT = Struct(("outcome", True, Enum(SETTING_OUTCOMES)), ("reason", True, is_str))
WORK_ACK = Struct(("id", True, is_str), ("outcome", True, Enum(OUTCOMES)), ("reason", False, is_str),
                  ("results", False, MapOf(SETTING_RESULT)))
FETCH = Struct(("acks", False, ListOf(WORK_ACK)), ("wait_ms", False, is_u64))
WORK_ITEM = Struct(("id", True, is_str), ("kind", True, is_str), ("data", False, ANY))
WORK = Struct(("reply_to", True, is_str), ("items", True, ListOf(WORK_ITEM)))
RE_ENROL = Struct(("printer_id", True, is_str), ("new_public_key", True, is_str))
SPECS = {0x02: CHECK_IN, 0x03: CHECK_IN_ACK, 0x04: FETCH, 0x05: WORK, 0x06: RE_ENROL}


def structure(v, kind, path):
    """Step 4: an object wherever a struct is expected, with its required members (in table
    order) and no member null; then its known members in document order. Enumerations are
    strings; a setting's value is neither null nor a list."""
    if isinstance(kind, Struct):
        if not isinstance(v, Obj):
            raise Refused("bad_payload", path)
        for name, required, _ in kind.members:
            if required and name not in v:
                raise Refused("bad_payload", member(path, name))
        for k, x in v.pairs:
            m = kind.get(k)
            if m is None:
                continue  # unknown members are ignored
            if x is None:
                raise Refused("bad_payload", member(path, k))
            structure(x, m[2], member(path, k))
    elif isinstance(kind, ListOf):
        if type(v) is list:
            for i, x in enumerate(v):
                structure(x, kind.entry, index(path, i))
    elif isinstance(kind, MapOf):
        if isinstance(v, Obj):
            for k, x in v.pairs:
                structure(x, kind.entry, member(path, k))
    elif kind is SETTINGS:
        if isinstance(v, Obj):
            for k, x in v.pairs:
                if x is None or type(x) is list:
                    raise Refused("bad_payload", member(path, k))
    elif isinstance(kind, Enum):
        if type(v) is not str:
            raise Refused("bad_payload", path)


def reported_value_form(v):
    """The form of a ReportedValue (§7.3), or None."""
    if type(v) is bool:
        return "bool"
    if is_i64(v):
        return "integer"
    if type(v) is str:
        return "string"
    if isinstance(v, dict):
        if type(v.get("set")) is bool:
            # A verifier, when present, is a string; otherwise the value has no form.
            return "secret" if type(v.get("verifier", "")) is str else None
        if type(v.get("sha256")) is str and is_u64(v.get("not_after_ms")):
            return "certificate"
    return None


def types(v, kind, path):
    """Step 5: every known member of its type, the first failure in document order."""
    if isinstance(kind, Struct):
        for k, x in v.pairs:
            m = kind.get(k)
            if m is not None:
                types(x, m[2], member(path, k))
    elif isinstance(kind, ListOf):
        if type(v) is not list:
            raise Refused("bad_payload", path)
        for i, x in enumerate(v):
            types(x, kind.entry, index(path, i))
    elif isinstance(kind, MapOf):
        if not isinstance(v, Obj):
            raise Refused("bad_payload", path)
        for k, x in v.pairs:
            types(x, kind.entry, member(path, k))
    elif kind is SETTINGS:
        if not isinstance(v, Obj):
            raise Refused("bad_payload", path)
        for k, x in v.pairs:
            if reported_value_form(x) is None:
                raise Refused("bad_payload", member(path, k))
    elif isinstance(kind, Enum):
        if v not in kind.values:
            raise Refused("bad_payload", path)
    elif not kind(v):
        raise Refused("bad_payload", path)


def text(field, value, limit):
    if value is None:
        return
    if len(value) > limit:  # characters (code points), not bytes
        raise Refused("too_long", field)
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise Refused("bad_payload", field)


def name(field, value, limit):
    """A string that names something: not empty, then as text()."""
    if value == "":
        raise Refused("bad_payload", field)
    text(field, value, limit)


def count(field, values, limit):
    if values is not None and len(values) > limit:
        raise Refused("too_many", field)


def safe(field, value):
    if value is not None and value > MAX_JSON_SAFE_INTEGER:
        raise Refused("out_of_range", field)


def lower_hex(s, n):
    return len(s) == n and all(c in LOWER_HEX for c in s)


def is_uuid(s):
    return len(s) == 36 and all(c == "-" if i in (8, 13, 18, 23) else c in LOWER_HEX for i, c in enumerate(s))


def limits(message_type, m):
    """Step 6 of §7.2: the limits, in the documented order."""
    if message_type == 0x02:
        if m["seq"] == 0:
            raise Refused("out_of_range", "seq")
        safe("seq", m["seq"])
        safe("taken_at_ms", m["taken_at_ms"])
        info = m.get("info")
        if info is not None:
            for f, limit in (("name", MAX_TEXT_LEN), ("model", MAX_TEXT_LEN), ("serial", MAX_TOKEN_LEN),
                             ("firmware", MAX_TOKEN_LEN)):
                name(f"info.{f}", info[f], limit)
            for f in ("region", "language"):
                text(f"info.{f}", info.get(f), MAX_TOKEN_LEN)
        meters = m.get("meters")
        if meters is not None:
            for meter in METERS:
                safe(f"meters.{meter}", meters.get(meter))
        supplies = m.get("supplies")
        count("supplies", supplies, MAX_SUPPLIES)
        for i, s in enumerate(supplies or []):
            name(f"supplies[{i}].id", s["id"], MAX_TOKEN_LEN)
            text(f"supplies[{i}].colour", s.get("colour"), MAX_TOKEN_LEN)
            text(f"supplies[{i}].part_number", s.get("part_number"), MAX_TOKEN_LEN)
            if s.get("level_percent", 0) > 100:
                raise Refused("out_of_range", f"supplies[{i}].level_percent")
            safe(f"supplies[{i}].capacity_pages", s.get("capacity_pages"))
            safe(f"supplies[{i}].pages", s.get("pages"))
            if any(o["id"] == s["id"] for o in supplies[:i]):
                raise Refused("bad_payload", f"supplies[{i}].id")
        events = m.get("events")
        count("events", events, MAX_EVENTS)
        for i, e in enumerate(events or []):
            safe(f"events[{i}].at_ms", e["at_ms"])
            text(f"events[{i}].code", e.get("code"), MAX_TOKEN_LEN)
            text(f"events[{i}].detail", e.get("detail"), MAX_TEXT_LEN)
        settings = m.get("settings", {})
        count("settings", settings, MAX_SETTINGS)
        for sid in sorted(settings, key=lambda k: k.encode("utf-8")):
            name("settings", sid, MAX_SETTING_ID_LEN)
            v = settings[sid]
            form = reported_value_form(v)
            if form == "string":
                text(f"settings.{sid}", v, MAX_SETTING_TEXT_LEN)
            elif form == "certificate":
                if not lower_hex(v["sha256"], 64):
                    raise Refused("bad_payload", f"settings.{sid}.sha256")
                safe(f"settings.{sid}.not_after_ms", v["not_after_ms"])
            elif form == "secret" and "verifier" in v:
                if not v["set"] or not lower_hex(v["verifier"], 64):
                    raise Refused("bad_payload", f"settings.{sid}.verifier")
    elif message_type == 0x04:
        acks = m.get("acks")
        count("acks", acks, MAX_WORK_ITEMS)
        for i, a in enumerate(acks or []):
            name(f"acks[{i}].id", a["id"], MAX_TOKEN_LEN)
            text(f"acks[{i}].reason", a.get("reason"), MAX_TEXT_LEN)
            results = a.get("results", {})
            count(f"acks[{i}].results", results, MAX_APPLY_SETTINGS)
            for sid in sorted(results, key=lambda k: k.encode("utf-8")):
                name(f"acks[{i}].results", sid, MAX_SETTING_ID_LEN)
                text(f"acks[{i}].results.{sid}.reason", results[sid]["reason"], MAX_TEXT_LEN)
            if a["outcome"] == "done" and results:
                raise Refused("bad_payload", f"acks[{i}].results")
        if m.get("wait_ms", 0) > MAX_WAIT_MS:
            raise Refused("out_of_range", "wait_ms")
    elif message_type == 0x05:
        count("items", m["items"], MAX_WORK_ITEMS)
        for i, w in enumerate(m["items"]):
            name(f"items[{i}].id", w["id"], MAX_TOKEN_LEN)
            name(f"items[{i}].kind", w["kind"], MAX_TOKEN_LEN)
    elif message_type == 0x06:
        if not is_uuid(m["printer_id"]):
            raise Refused("bad_payload", "printer_id")
        if not lower_hex(m["new_public_key"], 64):
            raise Refused("bad_payload", "new_public_key")


def shape(message_type, plaintext):
    """The shape checks of §7.2, in their order: None, or (code, field) of the first failure."""
    try:
        m = parse(plaintext)
        if not isinstance(m, Obj):
            raise Refused("bad_payload")  # step 2: the top level is an object
        repeated_names(m, "")
        spec = SPECS[message_type]
        structure(m, spec, "")
        types(m, spec, "")
        limits(message_type, m)
    except Refused as r:
        return r.code, r.field
    return None


# ---- printer policies (§7.8, §7.9) -------------------------------------------------------------
APPLY = Struct(("policy", True, is_str), ("version", True, is_u64),
               ("settings", True, lambda v: isinstance(v, Obj) and all(
                   type(x) is bool or is_i64(x) or type(x) is str for x in v.values())),
               ("sealed", False, is_str))


def apply_types(m):
    """Step 5 for apply_settings data: document order; a bad setting value names its id."""
    for k, x in m.pairs:
        if k == "settings":
            if not isinstance(x, Obj):
                raise Refused("bad_payload", "settings")
            for sid, v in x.pairs:
                if not (type(v) is bool or is_i64(v) or type(v) is str):
                    raise Refused("bad_payload", f"settings.{sid}")
        elif k in ("policy", "version", "sealed"):
            types(x, APPLY.get(k)[2], k)


def setting_string(field, value):
    """A string value to apply: text of at most 255 characters, or PEM text."""
    if not value.startswith(PEM_START):
        text(field, value, MAX_SETTING_TEXT_LEN)
        return
    if len(value) > MAX_PEM_LEN:
        raise Refused("too_long", field)
    if any(unicodedata.category(c) == "Cc" and c not in "\r\n" for c in value):
        raise Refused("bad_payload", field)


def apply_shape(data):
    """The checks of an apply_settings item's data (§7.8): None, or (code, field)."""
    try:
        m = parse(data)
        if not isinstance(m, Obj):
            raise Refused("bad_payload")
        repeated_names(m, "")
        structure(m, APPLY, "")
        apply_types(m)
        name("policy", m["policy"], MAX_TOKEN_LEN)
        safe("version", m["version"])
        settings = m["settings"]
        count("settings", settings, MAX_APPLY_SETTINGS)
        for sid in sorted(settings, key=lambda k: k.encode("utf-8")):
            name("settings", sid, MAX_SETTING_ID_LEN)
            if type(settings[sid]) is str:
                setting_string(f"settings.{sid}", settings[sid])
        sealed = m.get("sealed")
        if sealed is not None and not (sealed and len(sealed) % 2 == 0 and len(sealed) <= 2 * MAX_BODY_LEN
                                       and lower_hex(sealed, len(sealed))):
            raise Refused("bad_payload", "sealed")
    except Refused as r:
        return r.code, r.field
    return None


def secrets_shape(content):
    """The checks of the content of a `settings` payload (§7.8): None, or (code, field)."""
    try:
        m = parse(content)
        if not isinstance(m, Obj):
            raise Refused("bad_payload")
        repeated_names(m, "")
        for k, x in m.pairs:
            if type(x) is not str:
                raise Refused("bad_payload", k)
        count("", m, MAX_APPLY_SETTINGS)
        for sid in sorted(m, key=lambda k: k.encode("utf-8")):
            name("", sid, MAX_SETTING_ID_LEN)
            setting_string(sid, m[sid])
    except Refused as r:
        return r.code, r.field
    return None


def secret_verifier(key, setting_id, value):
    msg = SECRET_VERIFIER_LABEL + b"\0" + setting_id.encode("utf-8") + b"\0" + value.encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).digest()


def check_policy(pol, keys):
    key = h(pol["verifier_key_hex"])
    check(h(pol["verifier_label_hex"]) == SECRET_VERIFIER_LABEL, "verifier label")
    for v in pol["verifiers"]:
        msg = SECRET_VERIFIER_LABEL + b"\0" + v["setting_id"].encode() + b"\0" + v["value"].encode()
        check(msg.hex() == v["message_hex"], f"verifier {v['setting_id']}: message")
        check(secret_verifier(key, v["setting_id"], v["value"]).hex() == v["verifier_hex"], f"verifier {v['setting_id']}")
        print(f"ok   verifier {v['setting_id']}")
    # The secrets sealed to the printer (type 0x01, purpose "settings").
    s = pol["sealed_secrets"]
    body = check_body_fields(s, keys)
    check(body[5] == 0x01 and (s["sender"], s["recipient"]) == ("server", "printer"), "sealed secrets: type and direction")
    err, pt = Opener().open(body, *keys["printer"], keys["server"][1], s["now_ms"])
    check(err is None and pt is not None, f"sealed secrets open ({err})")
    secrets = {}
    if pt:
        n = pt[0]
        purpose, content = pt[1:1 + n].decode("ascii"), pt[1 + n:]
        check(purpose == "settings" == s["payload"]["purpose"], "sealed secrets: purpose settings")
        check(secrets_shape(content) is None, f"sealed secrets: shape {secrets_shape(content)}")
        secrets = json.loads(content.decode("utf-8"))
        check(secrets == pol["secrets_json"], "sealed secrets: content")
    opened = {}
    for v in pol["valid"]:
        body = check_body_fields(v, keys)
        mtype = body[5]
        sk, pk = keys[v["recipient"]]
        err, pt = Opener().open(body, sk, pk, keys[v["sender"]][1], v["now_ms"])
        check(err is None and pt is not None and pt.hex() == v["plaintext_hex"], f"{v['name']}: opens ({err})")
        if pt is None:
            continue
        check(shape(mtype, pt) is None, f"{v['name']}: passes the shape checks ({shape(mtype, pt)})")
        opened[v["name"]] = (body[30:46].hex(), json.loads(pt.decode("utf-8")))
        print(f"ok   policy message {v['name']}: {len(body)} bytes")
    if {"apply_work", "apply_fetch", "apply_check_in"} <= opened.keys():
        item = opened["apply_work"][1]["items"][0]
        check(item["kind"] == "apply_settings", "work: an apply_settings item")
        data = json.dumps(item["data"]).encode("utf-8")
        check(apply_shape(data) is None, f"apply_settings data: shape {apply_shape(data)}")
        check(item["data"].get("sealed") == s["body_hex"], "apply_settings data carries the sealed secrets")
        check(opened["apply_work"][1]["reply_to"] == opened["apply_fetch"][0], "work answers the fetch")
        ack = opened["apply_fetch"][1]["acks"][0]
        check(ack["id"] == item["id"] and ack["outcome"] != "done" and ack["results"], "ack with results")
        check(set(ack["results"]) <= set(item["data"]["settings"]) | set(secrets), "results name the item's settings")
        reported = opened["apply_check_in"][1]["settings"]
        for sid, value in secrets.items():
            want = {"set": True, "verifier": secret_verifier(key, sid, value).hex()}
            check(reported.get(sid) == want, f"check-in proves {sid}")
    else:
        check(False, "policy.valid has apply_work, apply_fetch, apply_check_in")
    for v in pol["invalid_apply_data"]:
        got = apply_shape(v["text"].encode("utf-8"))
        check(got == (v["expected_code"], v["expected_field"]), f"apply data {v['name']}: got {got}")
        print(f"ok   invalid apply data {v['name']}: {got}")
    for v in pol["invalid_apply_secrets"]:
        got = secrets_shape(v["text"].encode("utf-8"))
        check(got == (v["expected_code"], v["expected_field"]), f"apply secrets {v['name']}: got {got}")
        print(f"ok   invalid apply secrets {v['name']}: {got}")


# ---- sessions (§2.8) ---------------------------------------------------------------------------
SESSION_SUITE = 0x02
SESSION_ID_LEN = 16
SESSION_HEADER_LEN = 3 + 1 + 1 + 1 + SESSION_ID_LEN + 8 + 8
MIN_SESSION_BODY_LEN = SESSION_HEADER_LEN + TAG_LEN
SESSION_WINDOW = 64
SESSION_MAX_SEQ = 1 << 20
SESSION_EXPORTS = [  # name, exporter context (label), length
    ("session_id", b"printfleet session v1 id", SESSION_ID_LEN),
    ("up_key", b"printfleet session v1 up key", 32),
    ("up_nonce", b"printfleet session v1 up nonce", 12),
    ("down_key", b"printfleet session v1 down key", 32),
    ("down_nonce", b"printfleet session v1 down nonce", 12),
]


def open_session_opening(body, recipient_sk, sender_pk):
    """Opens a sealed body as its receiver and exports the session from its HPKE context (RFC
    9180 §5.3): (plaintext, {name: value}), or (None, None) when it does not open."""
    header, enc, ct = body[:HEADER_LEN], body[HEADER_LEN:HEADER_LEN + ENC_LEN], body[HEADER_LEN + ENC_LEN:]
    try:
        skr = SUITE.kem.deserialize_private_key(recipient_sk)
        pks = SUITE.kem.deserialize_public_key(sender_pk)
        ctx = SUITE.create_recipient_context(enc, skr, info=INFO, pks=pks)
        pt = ctx.open(ct, aad=header)
    except Exception:  # noqa: BLE001 - any HPKE failure
        return None, None
    return pt, {name: ctx.export(label, n) for name, label, n in SESSION_EXPORTS}


def session_nonce(base, seq):
    return base[:4] + bytes(a ^ b for a, b in zip(base[4:], seq.to_bytes(8, "big")))


class SeqWindow:
    """The up sequence numbers a receiver took in one session: each once, none 0 or beyond the
    maximum, none 64 or more below the highest taken."""

    def __init__(self):
        self.taken = set()

    def accept(self, seq, record=True):
        highest = max(self.taken, default=0)
        if seq == 0 or seq > SESSION_MAX_SEQ or seq in self.taken or seq + SESSION_WINDOW <= highest:
            return False
        if record:
            self.taken.add(seq)
        return True


def open_session_body(body, sessions, direction, now_ms, window=None):
    """The receiver's checks of a session body, in order: structure, session known, freshness,
    authentication, then (up bodies, `window` given) the sequence window. `sessions` maps the
    ids the receiver holds to their exported values. Returns (error, (header fields, plaintext))."""
    if len(body) > MAX_BODY_LEN:
        return "oversized", None
    if len(body) < 5:
        return "truncated", None
    if body[0:3] != MAGIC:
        return "bad_magic", None
    if body[3] != VERSION:
        return "bad_version", None
    if body[4] != SESSION_SUITE:
        return "unknown_suite", None
    if len(body) < MIN_SESSION_BODY_LEN:
        return "truncated", None
    if body[5] not in MESSAGE_TYPES:
        return "unknown_type", None
    sid = body[6:22]
    seq = int.from_bytes(body[22:30], "big")
    ts = int.from_bytes(body[30:38], "big")
    s = sessions.get(sid)
    if s is None:
        return "unknown_session", None
    if not (now_ms - MAX_SKEW_MS <= ts <= now_ms + MAX_SKEW_MS):
        return "stale", None
    key, base = (s["up_key"], s["up_nonce"]) if direction == "up" else (s["down_key"], s["down_nonce"])
    try:
        pt = ChaCha20Poly1305(key).decrypt(session_nonce(base, seq), body[SESSION_HEADER_LEN:], body[:SESSION_HEADER_LEN])
    except Exception:  # noqa: BLE001 - InvalidTag
        return "tampered", None
    if window is not None and not window.accept(seq):
        return "replayed", None
    return None, ((body[5], sid, seq, ts), pt)


def check_sessions(sess, keys):
    check((sess["suite"], sess["header_len"], sess["min_body_len"]) == (SESSION_SUITE, SESSION_HEADER_LEN, MIN_SESSION_BODY_LEN), "session suite and lengths")
    check((sess["seq_window"], sess["max_seq"]) == (SESSION_WINDOW, SESSION_MAX_SEQ), "session window and maximum seq")
    # The opening: an ordinary sealed check_in from the printer, opened by the server.
    o = sess["opening"]
    body = check_body_fields(o, keys)
    check(body[4] == SUITE_ID and body[5] == 0x02 and (o["sender"], o["recipient"]) == ("printer", "server"), "opening: sealed check_in, printer to server")
    err, pt = Opener().open(body, *keys["server"], keys["printer"][1], o["now_ms"])
    check(err is None and pt is not None and pt.hex() == o["plaintext_hex"], f"opening opens ({err})")
    pt, exported = open_session_opening(body, keys["server"][0], keys["printer"][1])
    check(pt is not None and json.loads(pt.decode("utf-8")) == o["plaintext_json"], "opening: plaintext JSON")
    check(pt is not None and shape(0x02, pt) is None, "opening: passes the shape checks")
    exported = exported or {}
    names = [e["name"] for e in sess["exported"]]
    check(names == [n for n, _, _ in SESSION_EXPORTS], f"exported values: {names}")
    for e, (name, label, n) in zip(sess["exported"], SESSION_EXPORTS):
        check(e["label"].encode("ascii") == h(e["label_hex"]) == label and e["length"] == n, f"export {name}: label and length")
        got = exported.get(name, b"")
        check(len(got) == n and got.hex() == e["value_hex"], f"export {name}: Export(label, {n})")
        print(f"ok   session export {name}: {n} bytes")
    sid = exported.get("session_id", b"")
    held = {sid: exported}
    # The exchange: the up body opens for the server, the down body for the printer.
    opened = {}
    for v in sess["valid"]:
        name, d = v["name"], v["direction"]
        body = h(v["body_hex"])
        hd = v["header"]
        check(body[:SESSION_HEADER_LEN].hex() == v["header_hex"], f"{name}: header is the first 38 bytes")
        check(body[0:3] == h(hd["magic_hex"]) == MAGIC and (body[3], body[4], body[5]) == (hd["version"], hd["suite"], hd["message_type"]) == (VERSION, SESSION_SUITE, body[5]), f"{name}: magic/version/suite/type")
        check(body[6:22] == h(hd["session_id_hex"]) == sid, f"{name}: session id is the exported one")
        seq, ts = int.from_bytes(body[22:30], "big"), int.from_bytes(body[30:38], "big")
        check((seq, ts) == (hd["seq"], hd["timestamp_ms"]), f"{name}: seq and timestamp")
        check(sid[:8].hex() + seq.to_bytes(8, "big").hex() == v["message_id_hex"], f"{name}: message id")
        base = exported.get("up_nonce" if d == "up" else "down_nonce", bytes(12))
        check(session_nonce(base, seq).hex() == v["nonce_hex"], f"{name}: nonce")
        check(body[SESSION_HEADER_LEN:].hex() == v["ciphertext_hex"] and len(body) == MIN_SESSION_BODY_LEN + len(h(v["plaintext_hex"])), f"{name}: ciphertext and length")
        want_dir = ("printer", "server") if d == "up" else ("server", "printer")
        check((v["sender"], v["recipient"]) == want_dir, f"{name}: direction {d}")
        err, got = open_session_body(body, held, d, v["now_ms"], SeqWindow() if d == "up" else None)
        check(err is None and got is not None and got[1].hex() == v["plaintext_hex"], f"{name}: opens to the plaintext ({err})")
        # The other direction's key does not open it.
        other = "down" if d == "up" else "up"
        check(open_session_body(body, held, other, v["now_ms"])[0] == "tampered", f"{name}: does not open as {other}")
        if got is None:
            continue
        m = json.loads(got[1].decode("utf-8"))
        check(m == v["plaintext_json"], f"{name}: plaintext JSON")
        check(shape(body[5], got[1]) is None, f"{name}: passes the shape checks ({shape(body[5], got[1])})")
        opened[d] = (v["message_id_hex"], seq, body[5], m)
        print(f"ok   session body {name}: {len(body)} bytes, plaintext {len(got[1])} bytes")
    if {"up", "down"} <= opened.keys():
        up_id, up_seq, up_type, ci = opened["up"]
        _, down_seq, down_type, ack = opened["down"]
        check(up_type == 0x02 and down_type == 0x03, "session exchange: check_in then check_in_ack")
        check(down_seq == up_seq, "the down body carries the seq of the up body it answers")
        check(ack["reply_to"] == up_id and ack["seq"] == ci["seq"] and ack["status"] == "stored", "check_in_ack answers the session check_in")
    else:
        check(False, "sessions.valid has an up and a down body")
    # Refused up bodies: the server holds the session, its window took `accepted_before`.
    for v in sess["invalid"]:
        window = SeqWindow()
        for s in v["accepted_before"]:
            check(window.accept(s), f"{v['name']}: seq {s} taken before")
        err, _ = open_session_body(h(v["body_hex"]), held, v["direction"], v["now_ms"], window)
        check(err == v["expected_error"], f"{v['name']}: expected {v['expected_error']}, got {err}")
        print(f"ok   invalid session body {v['name']}: {err}")
    # Not in the JSON: one byte over the limit; a session the server does not hold.
    check(open_session_body(b"\0" * (MAX_BODY_LEN + 1), held, "up", 0)[0] == "oversized", "oversized session body")
    for v in sess["valid"]:
        err, _ = open_session_body(h(v["body_hex"]), {}, v["direction"], v["now_ms"])
        check(err == "unknown_session", f"{v['name']}: in a forgotten session is unknown_session")
    window = SeqWindow()
    for step in sess["window"]:
        got = window.accept(step["seq"])
        check(got == step["accepted"], f"session window seq {step['seq']}: expected {step['accepted']}, got {got}")
    print(f"ok   session window: {len(sess['window'])} steps")


def uuid_string(b):
    x = b.hex()
    return f"{x[0:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:32]}"


def check_messages(msgs, keys, printer_id):
    nk = msgs["new_printer_key"]
    kp = SUITE.kem.derive_key_pair(h(nk["ikm_hex"]))
    new_pk = kp.public_key.to_public_bytes()
    check(new_pk.hex() == nk["public_key_hex"] and clamp(kp.private_key.to_private_bytes()).hex() == nk["private_key_hex"], "new printer key pair")
    check(key_id(new_pk).hex() == nk["key_id_hex"], "new printer key id")
    opened = {}
    for v in msgs["valid"]:
        name = v["name"]
        body = check_body_fields(v, keys)
        mtype = body[5]
        check(MESSAGE_TYPES.get(mtype) == name, f"{name}: message type {mtype:#04x}")
        direction = (v["sender"], v["recipient"])
        printer_to_server = mtype in (0x02, 0x04, 0x06)
        check(direction == (("printer", "server") if printer_to_server else ("server", "printer")), f"{name}: direction")
        sk, pk = keys[v["recipient"]]
        err, pt = Opener().open(body, sk, pk, keys[v["sender"]][1], v["now_ms"])
        check(err is None and pt is not None and pt.hex() == v["plaintext_hex"], f"{name}: opens to the plaintext ({err})")
        if pt is None:
            continue
        m = json.loads(pt.decode("utf-8"))
        check(m == v["plaintext_json"], f"{name}: plaintext JSON")
        check(shape(mtype, pt) is None, f"{name}: passes the shape checks ({shape(mtype, pt)})")
        opened[name] = (body[30:46].hex(), m)
        print(f"ok   message {name}: {len(body)} bytes, plaintext {len(pt)} bytes")
    # The exchanges fit together (§7.3, §7.4, §6.1).
    if {"check_in", "check_in_ack", "fetch", "work", "re_enrol"} <= opened.keys():
        ci_id, ci = opened["check_in"]
        ack = opened["check_in_ack"][1]
        check(ack["reply_to"] == ci_id and ack["seq"] == ci["seq"] and ack["status"] == "stored", "check_in_ack answers the check_in")
        forms = {reported_value_form(x) for x in ci.get("settings", {}).values()}
        check(len(ci.get("supplies", [])) >= 2 and any(e["kind"] == "jam" for e in ci.get("events", [])), "check_in: supplies and a jam")
        check(forms == {"bool", "string", "integer", "secret", "certificate"}, "check_in: every setting form")
        work = opened["work"][1]
        check(work["reply_to"] == opened["fetch"][0], "work answers the fetch")
        check([i["kind"] for i in work["items"]] == ["report_now"] and "data" not in work["items"][0], "work: one report_now item without data")
        re = opened["re_enrol"][1]
        check(re["new_public_key"] == new_pk.hex(), "re_enrol names the new key")
        check(re["printer_id"] == uuid_string(printer_id), "re_enrol names the printer id")
    else:
        check(False, "messages.valid has one body of each type 0x02-0x06")
    for v in msgs["invalid_payloads"]:
        pt = h(v["plaintext_hex"])
        if "plaintext" in v:
            check(v["plaintext"].encode("utf-8") == pt, f"{v['name']}: plaintext text")
        got = shape(v["message_type"], pt)
        want = (v["expected_code"], v["expected_field"])
        check(got == want, f"{v['name']}: expected {want}, got {got}")
        print(f"ok   invalid payload {v['name']}: {got}")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        vectors = json.load(f)
    keys = check_sealed(vectors["sealed"])
    check_heartbeat(vectors["heartbeat"])
    check_messages(vectors["messages"], keys, h(vectors["heartbeat"]["printer_id_hex"]))
    check_policy(vectors["policy"], keys)
    check_sessions(vectors["sessions"], keys)
    if failures:
        print(f"FAILED: {len(failures)} of {checks} checks")
        return 1
    print(f"all {checks} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
