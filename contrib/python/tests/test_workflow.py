# SPDX-License-Identifier: GPL-2.0-or-later
"""The guide's snapshot workflow through gvmclient, against a real gvmd.

Run by tests/integration/test-python-client.sh, which starts gvmd and sets
  GVM_SOCKET, GVM_RO_SOCKET  the daemon's sockets
  GVM_TEST_VOLUME            a dir volume ("local")
  GVM_TEST_ROOT              where that volume's files are
  GVM_TEST_SUB               a directory in it private to this run
The workflow: a base image and a domain disk on it, four snapshots of the
domain, snapshot-delete of the first (commits the disk's image into the
base), block-pull down to a snapshot's image with a progress callback, a
flatten, image-delete of an image no longer used, snapshot-revert.  After
each step the catalog's images and the chain image-info reports are what
the step promises, and the active image reads as before (image-checksum).
With qemu-io installed, each layer gets data of its own first, so that
the checksums, the commit and the pull's progress have something to show.
"""
import os
import shutil
import subprocess
import unittest

import gvmclient
from gvmclient import (Client, GvmError, InUse, InvalidParams, MethodNotFound,
                       NotFound, PermissionDenied)

SOCK = os.environ.get("GVM_SOCKET")
RO_SOCK = os.environ.get("GVM_RO_SOCKET")
VOL = os.environ.get("GVM_TEST_VOLUME", "local")
ROOT = os.environ.get("GVM_TEST_ROOT")
SUB = os.environ.get("GVM_TEST_SUB", "py")
QEMU_IO = shutil.which("qemu-io")
MiB = 1 << 20
DOM = "py-vm"


def ref(path):
    """VOLUME:PATH of a file of the test directory."""
    return "%s:%s/%s" % (VOL, SUB, path)


def short(name):
    """The file name of VOLUME:PATH."""
    return name.rsplit("/", 1)[-1]


def write(name, pattern, offset):
    """Write 1 MiB of pattern at offset into the image VOLUME:PATH."""
    if QEMU_IO:
        path = os.path.join(ROOT, name.split(":", 1)[1])
        subprocess.run([QEMU_IO, "-c", "write -P %d %d %d" % (pattern, offset, MiB), path],
                       check=True, stdout=subprocess.DEVNULL)


@unittest.skipUnless(SOCK and ROOT, "run by tests/integration/test-python-client.sh")
class Workflow(unittest.TestCase):
    def setUp(self):
        os.makedirs(os.path.join(ROOT, SUB), exist_ok=True)
        self.c = Client(SOCK, timeout=120)

    def tearDown(self):
        self.c.close()

    # ---- what the catalog says ------------------------------------------------------
    def chain(self, name):
        info = self.c.image_info(name, backing_chain=True)
        return [short(i["path"]) for i in info["chain"]]

    def paths(self):
        return {i["path"] for i in self.c.image_list(volume=VOL)}

    def active(self):
        dom = [d for d in self.c.domain_list() if d["name"] == DOM]
        self.assertEqual(1, len(dom))
        return {d["target"]: d["image-name"] for d in dom[0]["disks"]}["vda"]

    def checksum(self, name):
        return self.c.image_checksum(name)["sha256"]

    def gone(self, name):
        self.assertNotIn(name.split(":", 1)[1], self.paths(), name + " is still catalogued")
        self.assertFalse(os.path.exists(os.path.join(ROOT, name.split(":", 1)[1])),
                         name + " is still on storage")

    def wait(self, job, **kw):
        seen = []
        done = self.c.wait_job(job, progress=seen.append, timeout=120, interval=0.05, **kw)
        self.assertTrue(seen, "the progress callback was not called")
        self.assertEqual("concluded", seen[-1]["status"])
        self.assertEqual(done, seen[-1])
        self.assertIsNone(done.get("error"))
        self.assertFalse(done["cancelled"])
        return done, seen

    # ---- the workflow ---------------------------------------------------------------
    def test_workflow(self):
        c = self.c
        base = c.image_create(VOL, SUB + "/base.qcow2", "qcow2", size=64 * MiB)
        self.assertEqual(("qcow2", 64 * MiB, None),
                         (base["format"], base["virtual-size"], base["backing"]))
        vm = c.image_create(VOL, SUB + "/vm.qcow2", "qcow2", backing=ref("base.qcow2"),
                            backing_format="qcow2")
        self.assertEqual((base["id"], 64 * MiB), (vm["backing"], vm["virtual-size"]))
        write(ref("base.qcow2"), 0x10, 0)
        dom = c.domain_attach(DOM, disks=[{"target": "vda", "image": ref("vm.qcow2")}])
        self.assertEqual(DOM, dom["name"])
        self.assertEqual(ref("vm.qcow2"), self.active())

        # ---- four snapshots: each freezes the active image under a new overlay
        overlays, parent = [], None
        for k in range(1, 5):
            active = self.active()
            write(active, 0x10 + k, k * MiB)
            s = c.snapshot_create("s%d" % k, domain=DOM, description="snapshot %d" % k)
            self.assertEqual(("s%d" % k, parent, True, "snapshot %d" % k),
                             (s["name"], s["parent"], s["current"], s["description"]))
            self.assertEqual(1, len(s["disks"]))
            disk = s["disks"][0]
            self.assertEqual(("vda", active), (disk["target"], disk["image-name"]))
            overlays.append(disk["overlay-name"])
            self.assertEqual(overlays[-1], self.active())
            parent = s["name"]
        o1, o2, o3, o4 = overlays
        write(o4, 0x15, 5 * MiB)
        self.assertEqual([short(o) for o in (o4, o3, o2, o1)] + ["vm.qcow2", "base.qcow2"],
                         self.chain(o4))
        tree = {s["name"]: (s["parent"], s["children"], s["current"])
                for s in c.snapshot_list(domain=DOM)}
        self.assertEqual({"s1": (None, ["s2"], False), "s2": ("s1", ["s3"], False),
                          "s3": ("s2", ["s4"], False), "s4": ("s3", [], True)}, tree)
        content = self.checksum(o4)
        o1_content = self.checksum(o1)

        # ---- snapshot-delete s1: vm.qcow2 is committed into the base ----------------
        with c.events(timeout=60) as events:
            job = c.snapshot_delete("s1")
            self.assertEqual("snapshot-delete", job["type"])
            self.wait(job)
            statuses = []
            for ev in events:
                self.assertEqual("job-status-change", ev["event"])
                if ev["job"]["id"] == job["id"]:
                    statuses.append(ev["job"]["status"])
                    if ev["job"]["status"] == "concluded":
                        break
        self.assertEqual("concluded", statuses[-1])
        self.assertEqual(1, statuses.count("concluded"), statuses)
        self.gone(ref("vm.qcow2"))
        self.assertEqual([short(o) for o in (o4, o3, o2, o1)] + ["base.qcow2"], self.chain(o4))
        self.assertEqual(content, self.checksum(o4))
        self.assertEqual(o1_content, self.checksum(o1))
        self.assertIsNone(c.snapshot_info("s2")["parent"])
        if QEMU_IO:
            # vm.qcow2's data (pattern 0x11 at 1 MiB) now lives in the base
            ext = [e for e in c.image_map(ref("base.qcow2"))
                   if e["start"] <= MiB < e["start"] + e["length"]]
            self.assertEqual([(True, 0)], [(e["data"], e["depth"]) for e in ext])

        # ---- block-pull o3 into o4, with progress; op-id replays the job -----------
        job = c.block_pull(o4, base=o2, op_id="py-pull-1")
        again = c.block_pull(o4, base=o2, op_id="py-pull-1")
        self.assertEqual(job["id"], again["id"])
        self.assertEqual("py-pull-1", job["op-id"])
        done, seen = self.wait(job)
        self.assertEqual(done["progress"]["current"], done["progress"]["total"])
        if QEMU_IO:
            self.assertGreater(done["progress"]["total"], 0)
        self.assertEqual([short(o) for o in (o4, o2, o1)] + ["base.qcow2"], self.chain(o4))
        self.assertIn(o3.split(":", 1)[1], self.paths(), "the pulled-from image stays")
        self.assertEqual(content, self.checksum(o4))

        # ---- flatten: o4 stands alone ------------------------------------------------
        done, _ = self.wait(c.block_pull(o4, base=None))
        self.assertEqual("block-pull", done["type"])
        self.assertEqual([short(o4)], self.chain(o4))
        self.assertIsNone(c.image_info(o4)["backing"])
        self.assertEqual(content, self.checksum(o4))

        # ---- image-delete: o3 is no longer read, once s4 no longer records it ---
        with self.assertRaises(InUse) as cm:
            c.image_delete(o3)
        self.assertEqual("InUse", cm.exception.cls)
        self.assertIn("s4", cm.exception.message)
        self.wait(c.snapshot_delete("s4", metadata_only=True))
        self.assertEqual({}, c.image_delete(o3))
        self.gone(o3)
        with self.assertRaises(NotFound):
            c.snapshot_info("s4")

        # ---- snapshot-revert s2: a new overlay on o1 is active, the old branch stays -
        r = c.snapshot_revert("s2")
        self.assertEqual(("s2", True), (r["name"], r["current"]))
        new = self.active()
        self.assertNotIn(new, overlays)
        self.assertEqual([short(new), short(o1), "base.qcow2"], self.chain(new))
        self.assertEqual(o1_content, self.checksum(new))
        self.assertEqual(content, self.checksum(o4), "the old branch changed")
        self.assertEqual({"s2": (None, ["s3"], True), "s3": ("s2", [], False)},
                         {s["name"]: (s["parent"], s["children"], s["current"])
                          for s in c.snapshot_list(domain=DOM)})
        for job in c.query_jobs():
            self.assertEqual("concluded", job["status"])

    # ---- typed errors -----------------------------------------------------------------
    def test_errors(self):
        c = self.c
        with self.assertRaises(NotFound) as cm:
            c.image_info(ref("no-such-image.qcow2"))
        e = cm.exception
        self.assertIsInstance(e, GvmError)
        self.assertEqual(("NotFound", -32000), (e.cls, e.code))
        self.assertEqual("NotFound", e.data["class"])
        self.assertTrue(e.message)

        with self.assertRaises(InvalidParams) as cm:
            c.image_create(VOL, SUB + "/bad.qcow2", "qcow2", size="big")
        self.assertEqual(("InvalidParams", -32602, "size"),
                         (cm.exception.cls, cm.exception.code, cm.exception.param))
        self.assertFalse(os.path.exists(os.path.join(ROOT, SUB, "bad.qcow2")))
        with self.assertRaises(InvalidParams) as cm:
            c.call("image-info", {"image": ref("x.qcow2"), "no-such-param": 1})
        self.assertEqual("no-such-param", cm.exception.param)
        with self.assertRaises(MethodNotFound) as cm:
            c.call("no-such-method")
        self.assertEqual(-32601, cm.exception.code)
        with self.assertRaises(NotFound):
            c.snapshot_info("no-such-snapshot")
        # the connection goes on after errors
        self.assertEqual(gvmclient.PROTOCOL_VERSION, c.query_version()["protocol"])

    @unittest.skipUnless(RO_SOCK, "GVM_RO_SOCKET is not set")
    def test_read_only_socket(self):
        with Client(RO_SOCK, timeout=60) as ro:
            self.assertIsInstance(ro.volume_list(), list)
            with self.assertRaises(PermissionDenied):
                ro.image_create(VOL, SUB + "/ro.qcow2", "qcow2", size=MiB)

    def test_every_method(self):
        for wire, m in gvmclient.METHODS.items():
            self.assertTrue(callable(getattr(Client, m.name, None)), wire)
        self.assertEqual(len(gvmclient.METHODS),
                         len({m.name for m in gvmclient.METHODS.values()}))


if __name__ == "__main__":
    unittest.main(verbosity=2)
