"""Hostile and edge inputs for vigil_verify, each rule as PROTOCOL.md states it.

Run: python3 -m unittest discover -s verifiers/python   (test/python-verifier.test.ts runs it)
"""

import copy
import json
import os
import random
import unittest

import vigil_verify as vv

VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "packages", "protocol", "vectors")


def newest(prefix):
    """The newest `<prefix><N>.json` of the vectors (the tests follow the protocol's version)."""
    ns = [int(f[len(prefix) : -5]) for f in os.listdir(VECTORS) if f.startswith(prefix) and f.endswith(".json") and f[len(prefix) : -5].isdigit()]
    return max(ns)


RECORD_V, LEAF_V = newest("v"), newest("merkle-v")
SPEC = vv.spec_for(RECORD_V, LEAF_V)


def load(name):
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        return json.load(f)


def event(i):
    ev = load(f"v{RECORD_V}.json")["stream"]["events"][i]
    w = {"record": ev["record"], "hash": ev["hash"]}
    if "disclosures" in ev:
        w["disclosures"] = ev["disclosures"]
    return w


def resealed(record_obj, disclosures=None):
    text = json.dumps(record_obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    w = {"record": text, "hash": vv.sha256_hex(text.encode("utf-8"))}
    if disclosures is not None:
        w["disclosures"] = disclosures
    return w


def problems(w, **kw):
    return vv.check_sealed_event(w, SPEC, **kw).problems


class Conventions(unittest.TestCase):
    def test_base64url_is_canonical_only(self):
        # §2: "…Cg" and "…Ch" decode to the same bytes; only the encoder's text is accepted.
        self.assertEqual(vv.b64url_decode("Cg"), b"\n")
        self.assertIsNone(vv.b64url_decode("Ch"))
        self.assertIsNone(vv.b64url_decode("Cg=="))
        self.assertIsNone(vv.b64url_decode("C"))
        self.assertIsNone(vv.b64url_decode("C+"))

    def test_time_is_a_real_instant(self):
        self.assertIsNone(vv.time_problem("2024-02-29T00:00:00.000Z"))
        self.assertIsNone(vv.time_problem("0000-02-29T00:00:00.000Z"))  # year 0000 is a leap year
        self.assertIsNotNone(vv.time_problem("2026-02-29T00:00:00.000Z"))
        self.assertIsNotNone(vv.time_problem("1900-02-29T00:00:00.000Z"))
        self.assertIsNotNone(vv.time_problem("2026-12-31T23:59:60.000Z"))  # no leap second
        self.assertIsNotNone(vv.time_problem("2026-12-31T23:59:59Z"))
        self.assertIsNotNone(vv.time_problem("2026-12-31T23:59:59.000+00:00"))
        self.assertEqual(vv.time_ms("1970-01-01T00:00:00.001Z"), 1)
        self.assertEqual(vv.time_ms("0000-01-01T00:00:00.000Z"), -62167219200000)

    def test_rfc8785_numbers_strings_and_key_order(self):
        self.assertEqual(vv.canonical([1e21, 1e-7, 0.000001, 123456789012345680000, 4.5, -0.0, 2**53 - 1]),
                         "[1e+21,1e-7,0.000001,123456789012345680000,4.5,0,9007199254740991]")
        self.assertEqual(vv.canonical([1e20, 5e-324, 1.7976931348623157e308]), "[100000000000000000000,5e-324,1.7976931348623157e+308]")
        self.assertEqual(vv.canonical("\u2028\x7f/\x1f\x08"), '"\u2028\x7f/\\u001f\\b"')
        # keys by UTF-16 code units: U+E000 sorts after U+1D11E (a surrogate pair), unlike UTF-8 order
        self.assertEqual(vv.canonical({"\ue000": 1, "\U0001d11e": 2}), '{"\U0001d11e":2,"\ue000":1}')
        for bad in (float("nan"), float("inf"), "\ud800", 10**400):
            with self.assertRaises((ValueError, OverflowError)):
                vv.canonical(bad)

    def test_lengths_count_utf16_code_units(self):
        self.assertEqual(vv.utf16_len("\U0001d11e"), 2)
        self.assertEqual(vv.utf16_len("é"), 1)

    def test_canonical_problem(self):
        self.assertIsNone(vv.canonical_problem('{"a":1,"b":[true]}'))
        self.assertIsNotNone(vv.canonical_problem('{"b":1,"a":1}'))
        self.assertIsNotNone(vv.canonical_problem('{"a":1,"a":1}'))  # duplicate member
        self.assertIsNotNone(vv.canonical_problem('{"a": 1}'))
        self.assertIsNotNone(vv.canonical_problem('{"a":"\\u0041"}'))  # an escape RFC 8785 does not use
        self.assertIsNotNone(vv.canonical_problem('{"a":1.0}'))
        self.assertIsNotNone(vv.canonical_problem('{"a":NaN}'))
        self.assertIsNotNone(vv.canonical_problem('{"a":"\\ud800"}'))

    def test_deep_nesting_is_refused_without_recursion(self):
        deep = "[" * 100000 + "]" * 100000
        self.assertIsNotNone(vv.canonical_problem(deep))
        self.assertIsNotNone(vv.limits_problem(json.loads("[" * 40 + "]" * 40)))
        self.assertIsNone(vv.limits_problem(json.loads("[" * 32 + "]" * 32)))
        # §3.5: only objects and arrays are levels; a scalar inside level 32 is no level 33
        at_limit = '{"a":' * 31 + '{"a":1}' + "}" * 31
        self.assertIsNone(vv.limits_problem(json.loads(at_limit)))
        self.assertIsNotNone(vv.limits_problem(json.loads('{"a":' * 32 + '{"a":1}' + "}" * 32)))
        # a record: itself level 1, metadata level 2, so 31 objects below metadata reach 33
        self.assertIsNone(vv.limits_problem({"metadata": json.loads('{"a":' * 30 + "{}" + "}" * 30)}))
        self.assertIsNotNone(vv.limits_problem({"metadata": json.loads('{"a":' * 31 + "{}" + "}" * 31)}))
        self.assertIsNotNone(vv.limits_problem({str(i): 0 for i in range(257)}))
        self.assertIsNotNone(vv.limits_problem([0] * 1025))

    def test_ip_addresses_as_node_net_isip(self):
        for ok in ("203.0.113.7", "2001:db8::1", "::ffff:1.2.3.4", "fe80::1%eth0", "::"):
            self.assertTrue(vv.is_ip(ok), ok)
        for bad in ("01.2.3.4", "256.1.1.1", "1.2.3", "2001:db8::1::2", "", "localhost", "1.2.3.4%eth0"):
            self.assertFalse(vv.is_ip(bad), bad)


class SealedEvents(unittest.TestCase):
    def test_vector_events_pass(self):
        for i in range(4):
            self.assertEqual(problems(event(i)), [])

    def test_wire_shape_is_closed(self):
        w = dict(event(0), extra=1)
        self.assertTrue(any("is not allowed here" in p for p in problems(w)))
        w = event(1)
        w["disclosures"]["/actor/id"]["extra"] = 1
        self.assertTrue(any("exactly salt and value" in p for p in problems(w)))

    def test_upper_case_hash_is_refused(self):
        w = event(0)
        w["hash"] = w["hash"].upper()
        self.assertTrue(any(p.startswith("/hash") for p in problems(w)))

    def test_a_person_id_in_the_clear_is_refused(self):
        r = json.loads(event(0)["record"])
        r["actor"] = {"type": "user", "id": "u-1"}
        self.assertTrue(any("identifies a person" in p for p in problems(resealed(r))))

    def test_unknown_fields_are_kept_and_other_versions_refused(self):
        r = json.loads(event(0)["record"])
        r["x_new"] = {"deep": [1]}
        self.assertEqual(problems(resealed(r)), [])
        r["v"] = RECORD_V + 1
        self.assertTrue(any("/record/v" in p for p in problems(resealed(r))))
        r["v"] = 1 if RECORD_V > 1 else 2
        self.assertTrue(any("/record/v" in p for p in problems(resealed(r))))

    def test_personal_must_be_sorted_and_hold_commitments(self):
        w = event(1)
        r = json.loads(w["record"])
        r["personal"] = list(reversed(r["personal"]))
        self.assertTrue(any("sorted" in p for p in problems(resealed(r, w["disclosures"]))))
        r = json.loads(w["record"])
        r["personal"] = sorted(r["personal"] + ["/metadata/mfa"], key=vv.utf16_key)
        self.assertTrue(any("holds no commitment" in p for p in problems(resealed(r, w["disclosures"]))))
        r = json.loads(w["record"])
        r["personal"] = sorted(r["personal"] + ["/action"], key=vv.utf16_key)
        self.assertTrue(any("cannot be committed" in p for p in problems(resealed(r, w["disclosures"]))))

    def test_disclosures(self):
        w = event(1)
        w["disclosures"]["/metadata/x"] = {"salt": "AAAAAAAAAAAAAAAAAAAAAA", "value": 1}
        self.assertTrue(any("does not list" in p for p in problems(w)))
        w = event(1)
        w["disclosures"]["/context/ip"]["value"] = "not-an-ip"
        self.assertTrue(any("IPv4 or IPv6" in p for p in problems(w)))
        w = event(1)
        salt = w["disclosures"]["/actor/id"]["salt"]
        w["disclosures"]["/actor/id"]["salt"] = salt[:-1] + chr(ord(salt[-1]) + 1)  # same bytes, other text
        self.assertTrue(any("not canonical base64url" in p for p in problems(w)))
        w = event(1)
        w["disclosures"]["/actor/id"]["salt"] = vv.b64url_encode(b"\x00" * 15) + "AAAA"[:0]
        self.assertTrue(any("22-86" in p or "16-64 bytes" in p for p in problems(w)))
        w = event(1)
        w["disclosures"]["/actor/id"]["value"] = "x" * 257
        self.assertTrue(any("at most 256" in p for p in problems(w)))
        # an erased disclosure is simply absent (§5.4)
        w = event(1)
        del w["disclosures"]["/actor/id"]
        self.assertEqual(problems(w), [])

    def test_reserved_streams(self):
        r = json.loads(event(0)["record"])
        r["stream"] = "Vigil/admin/x"
        self.assertTrue(any("reserved" in p for p in problems(resealed(r))))
        self.assertEqual(problems(resealed(r), allow_reserved=True), [])

    def test_corrects_is_closed(self):
        r = json.loads(event(0)["record"])
        r["corrects"] = {"event": r["id"], "hash": "0" * 64, "note": 1}
        self.assertTrue(any("/record/corrects/note: is not allowed here" in p for p in problems(resealed(r))))

    def test_a_lone_surrogate_record_has_no_hash(self):
        w = {"record": '{"a":"\ud800"}', "hash": "0" * 64}
        self.assertTrue(any("lone surrogate" in p for p in problems(w)))

    def test_noncanonical_record_with_its_own_hash_is_refused(self):
        text = event(0)["record"].replace(f'"v":{RECORD_V}}}', f'"v":{RECORD_V} }}')
        self.assertNotEqual(text, event(0)["record"])
        w = {"record": text, "hash": vv.sha256_hex(text.encode())}
        self.assertTrue(any("RFC 8785" in p for p in problems(w)))


class Framing(unittest.TestCase):
    def test_the_cr_that_ends_a_line_is_dropped_and_no_other(self):
        r, h = b'{"a":1}', b"ab" * 32
        lines, probs = vv.parse_framed_body(r + b"\t" + h + b"\t{}\r")
        self.assertEqual(probs, [])
        self.assertEqual(lines[0].disclosures, b"{}")
        body = r + b"\t" + h + b"\t{}\r\r\n" + b'{"a":\r1}\t' + h + b"\t\n" + r + b"\t" + h + b"\t { } \n"
        lines, probs = vv.parse_framed_body(body)
        self.assertEqual(probs, ["line 0: /disclosures: holds a raw CR", "line 1: /record: holds a raw CR"])
        self.assertEqual([x.index for x in lines], [2])


class Streams(unittest.TestCase):
    def records(self):
        return [(json.loads(event(i)["record"]), event(i)["hash"]) for i in range(4)]

    def test_gap_fork_and_after_close(self):
        recs = self.records()
        self.assertEqual(vv.check_streams(recs), [])
        self.assertTrue(any("gap" in p for p in vv.check_streams(recs[:2] + recs[3:])))
        forked = dict(recs[2][0], time="2026-11-23T09:00:05.002Z")
        self.assertTrue(any("fork" in p for p in vv.check_streams(recs + [(forked, "f" * 64)])))
        closed = dict(recs[2][0], action="stream.closed")
        self.assertTrue(any("follows stream.closed" in p for p in vv.check_streams(recs[:2] + [(closed, recs[2][1]), recs[3]])))


class Proofs(unittest.TestCase):
    def setUp(self):
        self.m = load(f"merkle-v{LEAF_V}.json")
        self.keys = vv.Keys([self.m["key"]["publicKey"]])

    def test_consistency_from_size_zero(self):
        doc = {"v": 1, "partition": 0, "fromSize": 0, "toSize": 7, "fromRoot": vv.EMPTY_ROOT, "toRoot": self.m["roots"][6], "path": []}
        self.assertEqual(vv.verify_consistency_proof(doc, self.keys, SPEC), [])

    def test_inclusion_proof_against_another_tree_size_is_refused(self):
        doc = json.loads(json.dumps(self.m["inclusionProof"]))
        doc["treeSize"] = 8
        self.assertTrue(vv.verify_inclusion_proof(doc, self.keys, SPEC))

    def test_inclusion_index_out_of_range_or_path_too_short(self):
        self.assertFalse(vv.verify_inclusion(b"\0" * 32, 7, 7, [], b"\0" * 32))
        # a leaf is not the root of a tree of two leaves: the path must use up the tree's height
        self.assertFalse(vv.verify_inclusion(b"\1" * 32, 0, 2, [], b"\1" * 32))


class Bundles(unittest.TestCase):
    """Bundles changed in one way and signed again with the vector key: only the rule refuses them."""

    def setUp(self):
        self.m = load(f"merkle-v{LEAF_V}.json")
        self.seed = bytes.fromhex(self.m["key"]["seedHex"])
        self.keys = vv.Keys([self.m["key"]["publicKey"]])
        bundle_file = load(f"privacy-v{newest('privacy-v')}.json")["bundle"]["file"]
        with open(os.path.join(VECTORS, bundle_file), "rb") as f:
            self.lines = [json.loads(x) for x in f.read().decode("utf-8").splitlines()]

    def signed(self, header, entries):
        body = "".join(vv.canonical(d) + "\n" for d in [header] + entries).encode("utf-8")
        st = json.loads(self.lines[-1]["statement"])
        st.update(entries=len(entries), bodyDigest=vv.sha256_hex(body))
        text = vv.canonical(st)
        sig = vv.sign(self.seed, SPEC.bundle_domain + b"\x00" + text.encode("utf-8"))
        return body + (vv.canonical({"signature": sig, "statement": text}) + "\n").encode("utf-8")

    def refused(self, data, because):
        probs = vv.verify_bundle(data, self.keys, SPEC)
        self.assertTrue(any(because in p for p in probs), probs)

    def test_the_vector_verifies_again_when_re_signed(self):
        self.assertEqual(vv.verify_bundle(self.signed(self.lines[0], self.lines[1:-1]), self.keys, SPEC), [])

    def test_mislabelled_role(self):
        e = dict(self.lines[1], roles=["target"])
        self.refused(self.signed(self.lines[0], [e] + self.lines[2:-1]), "roles says the subject is the target")

    def test_repeated_entry(self):
        self.refused(self.signed(self.lines[0], self.lines[1:-1] + [self.lines[1]]), "repeats entry 1 (line 2)")

    def test_another_persons_disclosure(self):
        ev = load(f"v{RECORD_V}.json")["stream"]["events"][2]
        e = dict(self.lines[2], disclosures=dict(self.lines[2]["disclosures"], **{"/access/grantedBy/id": ev["disclosures"]["/access/grantedBy/id"]}))
        self.refused(self.signed(self.lines[0], [self.lines[1], e]), "discloses /access/grantedBy/id, which is not the subject's")

    def test_an_event_of_someone_else(self):
        h = dict(self.lines[0], subject={"id": "u-9", "emails": []})
        self.refused(self.signed(h, self.lines[1:-1]), "roles says the subject is the actor")

    def test_roles_out_of_order_and_emails_not_normal(self):
        e = dict(self.lines[1], roles=["correction", "actor"])
        self.refused(self.signed(self.lines[0], [e] + self.lines[2:-1]), "in that order")
        h = dict(self.lines[0], subject={"id": "u-1042", "emails": ["Zoe@example.eu"]})
        self.refused(self.signed(h, self.lines[1:-1]), "subject.emails[0] is not in its normal form")

    def test_enrichment_needs_its_source_disclosed(self):
        d = {k: v for k, v in self.lines[1]["disclosures"].items() if k != "/context/userAgent"}
        e = dict(self.lines[1], disclosures=d, enrichment={"ua": {"browser": "x"}})
        self.refused(self.signed(self.lines[0], [e] + self.lines[2:-1]), "enrichment.ua is derived from /context/userAgent")

    def test_a_correction_whose_event_is_not_in_the_bundle(self):
        c = load(f"privacy-v{newest('privacy-v')}.json")["correction"]
        e = {"type": "event", "record": c["record"], "hash": c["hash"], "disclosures": c["disclosures"], "roles": ["correction"], "proof": None}
        self.assertEqual(vv.verify_bundle(self.signed(self.lines[0], self.lines[1:-1] + [e]), self.keys, SPEC), [])
        self.refused(self.signed(self.lines[0], self.lines[2:-1] + [e]), "is no earlier entry of this bundle")


    def correction_of(self, entry, ptr, value):
        """A correction of `entry`'s event setting `ptr`, sealed on an admin stream (§18.1)."""
        r = json.loads(entry["record"])
        inp = {
            "id": vv.derived_event_id(vv.time_ms(r["time"]) + 1000, ptr),
            "time": "2026-11-23T09:05:00.000Z",
            "action": "event.corrected", "category": "data_change", "outcome": "success",
            "actor": {"type": "system", "id": "vigil-admin"},
            "target": {"type": "event", "id": r["id"]},
            "corrects": {"event": r["id"], "hash": entry["hash"]},
            "metadata": {"corrected": {ptr: value}, "reason": "test"},
            "personal": [vv.corrected_value_path(ptr)],
        }  # fmt: skip
        link = {"stream": "vigil/admin/test/01a207a2-0000-7000-8000-000000000000", "seq": 0, "prev": vv.ZERO_HASH}
        w = vv.seal_event(SPEC, inp, link, lambda: os.urandom(16))
        return {"type": "event", "record": w["record"], "hash": w["hash"], "disclosures": w["disclosures"], "roles": ["correction"], "proof": None}

    def test_a_correction_discloses_only_the_subjects_corrected_values(self):
        # The subject is the access subject of event 2: the correction of that field is theirs;
        # the correction of the grantor's id (another person) is not, though the correction
        # event itself has no party the subject is (§16.3: no party role, no subject path).
        ok = self.correction_of(self.lines[2], "/access/subject/id", "u-1042")
        self.assertEqual(vv.verify_bundle(self.signed(self.lines[0], self.lines[1:-1] + [ok]), self.keys, SPEC), [])
        other = self.correction_of(self.lines[2], "/access/grantedBy/id", "u-2")
        self.refused(self.signed(self.lines[0], self.lines[1:-1] + [other]), "discloses /metadata/corrected/~1access~1grantedBy~1id")


class HostileDocuments(unittest.TestCase):
    """Random structural mutations of every kind of document: a verifier returns problems, it
    never raises (a crash on hostile input would be a denial of the check)."""

    VALUES = [None, True, 0, -1, 2**53, 1e300, "", "x", [], {}, [1], {"a": 1}, "\ud800", "0" * 64, "/actor/id"]

    def mutate(self, rnd, x):
        if isinstance(x, dict) and x:
            k = rnd.choice(list(x))
            y = dict(x)
            c = rnd.random()
            if c < 0.3:
                y[k] = rnd.choice(self.VALUES)
            elif c < 0.4:
                del y[k]
            elif c < 0.5:
                y[k + "x"] = y.pop(k)
            else:
                y[k] = self.mutate(rnd, x[k])
            return y
        if isinstance(x, list) and x:
            i = rnd.randrange(len(x))
            y = list(x)
            y[i] = self.mutate(rnd, x[i]) if rnd.random() < 0.7 else rnd.choice(self.VALUES)
            return y
        if isinstance(x, str) and x.startswith("{") and rnd.random() < 0.7:
            return json.dumps(self.mutate(rnd, json.loads(x)), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return rnd.choice(self.VALUES)

    def test_no_document_makes_a_verifier_raise(self):
        m = load(f"merkle-v{LEAF_V}.json")
        pv = load(f"privacy-v{newest('privacy-v')}.json")
        keys = vv.Keys([m["key"]["publicKey"]])
        strip = lambda d: {k: v for k, v in d.items() if k != "signingInputHex"}  # noqa: E731
        docs = [
            (lambda d: vv.verify_inclusion_proof(d, keys, SPEC), m["inclusionProof"]),
            (lambda d: vv.verify_consistency_proof(d, keys, SPEC), m["consistencyProof"]),
            (lambda d: vv.verify_checkpoint(d, keys, SPEC)[1], strip(m["checkpoints"][1])),
            (lambda d: vv.verify_erasure_receipt(d, keys, SPEC)[1], strip(pv["erasureReceipt"])),
        ] + [(lambda d: vv.check_sealed_event(d, SPEC).problems, event(i)) for i in range(4)]
        with open(os.path.join(VECTORS, pv["bundle"]["file"]), encoding="utf-8") as f:
            lines = [json.loads(x) for x in f.read().splitlines()]
        rnd = random.Random(1)
        for _ in range(4000):
            verify, doc = rnd.choice(docs)
            for _ in range(rnd.randint(1, 3)):
                doc = self.mutate(rnd, doc)
            self.assertIsInstance(verify(doc), list)
        for _ in range(1000):
            ls = copy.deepcopy(lines)
            j = rnd.randrange(len(ls))
            ls[j] = self.mutate(rnd, ls[j])
            try:
                data = "".join(vv.canonical(x) + "\n" for x in ls).encode("utf-8")
            except ValueError:
                continue  # a lone surrogate has no line to write
            self.assertIsInstance(vv.verify_bundle(data, keys, SPEC), list)


class CommandLine(unittest.TestCase):
    def test_a_missing_witness_directory_is_a_usage_error_not_a_traceback(self):
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = vv.main(["witness", "/nonexistent-witness-dir", "--key=AAAA"])
        self.assertEqual(rc, 2)
        self.assertIn("not a directory", err.getvalue())


if __name__ == "__main__":
    unittest.main()
