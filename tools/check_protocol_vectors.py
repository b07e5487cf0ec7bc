#!/usr/bin/env python3
"""Independent check of docs/protocol-vectors.json against docs/protocol.md.

Written from the document, not from the Rust code: HPKE comes from `pyhpke`, X25519,
ChaCha20-Poly1305 and HKDF from `cryptography`. It re-derives the key pairs from their IKM,
opens every sealed body (auth mode), runs the documented opening procedure on the invalid
bodies and compares error codes, re-derives the heartbeat keys, verifies every datagram and
replays the sliding-window steps.

    pip install pyhpke cryptography
    python3 tools/check_protocol_vectors.py docs/protocol-vectors.json

Exits 0 when everything matches, 1 on any mismatch, 2 on bad usage.
"""

import hashlib
import json
import sys

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
MESSAGE_TYPES = {0x01}
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
    for v in sealed["valid"]:
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


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        vectors = json.load(f)
    check_sealed(vectors["sealed"])
    check_heartbeat(vectors["heartbeat"])
    if failures:
        print(f"FAILED: {len(failures)} of {checks} checks")
        return 1
    print(f"all {checks} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
