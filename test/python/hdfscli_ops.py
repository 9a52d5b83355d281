"""Every op HdfsCLI (the `hdfs` package) supports, against a hopsd WebHDFS endpoint. Usage: URL ROOT."""
import os
import shutil
import sys
import tempfile

from hdfs import InsecureClient
from hdfs.util import HdfsError

url, root = sys.argv[1], sys.argv[2]
c = InsecureClient(url, user="hopsd")


def expect_error(fn, exception):
    try:
        fn()
    except HdfsError as e:
        assert exception in str(e) or getattr(e, "exception", None) == exception, (exception, str(e), getattr(e, "exception", None))
        return
    raise AssertionError("expected " + exception)


c.makedirs(root + "/dir", permission="750")
assert c.status(root + "/dir")["type"] == "DIRECTORY"
assert c.status(root + "/dir")["permission"] == "750"
c.write(root + "/dir/a.txt", data=b"hello hdfscli", overwrite=True)
c.write(root + "/dir/a.txt", data=b" + more", append=True)
with c.read(root + "/dir/a.txt") as r:
    assert r.read() == b"hello hdfscli + more"
with c.read(root + "/dir/a.txt", offset=6, length=7) as r:
    assert r.read() == b"hdfscli"
# a generator body goes out chunked
c.write(root + "/dir/gen.txt", data=(s.encode() for s in ["a", "b", "c"]))
with c.read(root + "/dir/gen.txt") as r:
    assert r.read() == b"abc"
expect_error(lambda: c.write(root + "/dir/a.txt", data=b"x"), "FileAlreadyExistsException")
assert sorted(c.list(root + "/dir")) == ["a.txt", "gen.txt"]
listing = dict(c.list(root + "/dir", status=True))
assert listing["a.txt"]["length"] == 20
assert list(c.walk(root))[0][0] == root
cs = c.content(root + "/dir")
assert cs["length"] == 23 and cs["fileCount"] == 2 and cs["directoryCount"] == 1, cs
ck = c.checksum(root + "/dir/a.txt")
assert ck["algorithm"] == "MD5-of-0MD5-of-512CRC32C" and ck["length"] == 28, ck
c.rename(root + "/dir/gen.txt", root + "/dir/renamed.txt")
expect_error(lambda: c.rename(root + "/dir/nope", root + "/dir/x"), "")  # HdfsCLI checks RENAME's boolean
c.set_replication(root + "/dir/a.txt", 2)
assert c.status(root + "/dir/a.txt")["replication"] == 2
expect_error(lambda: c.set_replication(root + "/dir", 2), "")  # false for a directory: HdfsCLI raises
c.set_permission(root + "/dir/a.txt", "600")
c.set_owner(root + "/dir/a.txt", owner="alice", group="staff")
c.set_times(root + "/dir/a.txt", access_time=1000, modification_time=2000)
st = c.status(root + "/dir/a.txt")
assert (st["permission"], st["owner"], st["group"], st["modificationTime"], st["accessTime"]) == ("600", "alice", "staff", 2000, 1000), st
assert c.status(root + "/missing", strict=False) is None
expect_error(lambda: InsecureClient(url, user="eve").write(root + "/dir/eve.txt", data=b"x"), "AccessControlException")
# text: encoding on write and read, line-by-line with a delimiter, chunked reads
c.write(root + "/dir/lines.txt", data="uno\ndos\ntres\n", encoding="utf-8", permission="640", replication=2, blocksize=1048576)
st = c.status(root + "/dir/lines.txt")
assert (st["permission"], st["replication"], st["blockSize"], st["length"]) == ("640", 2, 1048576, 13), st
with c.read(root + "/dir/lines.txt", encoding="utf-8", delimiter="\n") as r:
    assert [l for l in r if l] == ["uno", "dos", "tres"]
with c.read(root + "/dir/lines.txt", chunk_size=4) as r:
    assert b"".join(r) == b"uno\ndos\ntres\n"
assert c.resolve("rel/x") == "/user/hopsd/rel/x"  # relative paths resolve under the home directory
# partitioned output: part-files
for i in range(3):
    c.write(root + "/parts/part-r-%05d" % i, data=("p%d" % i).encode())
c.write(root + "/parts/_SUCCESS", data=b"")
assert sorted(c.parts(root + "/parts")) == ["part-r-00000", "part-r-00001", "part-r-00002"]
assert len(c.parts(root + "/parts", parts=[1], status=True)) == 1
# walk with depth and status
walked = list(c.walk(root, depth=1, status=True))
assert walked[0][0][0] == root and walked[0][0][1]["type"] == "DIRECTORY", walked[0]
assert sorted(name for name, _ in walked[0][1]) == ["dir", "parts"], walked
# directory upload and download with several threads (parallel two-step CREATEs and OPENs)
local = tempfile.mkdtemp(prefix="hopsd-hdfscli-")
os.makedirs(os.path.join(local, "tree", "sub"))
for name, body in [("a.bin", os.urandom(5000)), ("sub/b.bin", os.urandom(65536)), ("sub/c.bin", b"")]:
    with open(os.path.join(local, "tree", name), "wb") as f:
        f.write(body)
c.upload(root + "/tree", os.path.join(local, "tree"), n_threads=3)
assert sorted(c.list(root + "/tree/sub")) == ["b.bin", "c.bin"]
c.download(root + "/tree", os.path.join(local, "back"), n_threads=3)
for name in ["a.bin", "sub/b.bin", "sub/c.bin"]:
    assert open(os.path.join(local, "tree", name), "rb").read() == open(os.path.join(local, "back", name), "rb").read(), name
shutil.rmtree(local)
# what hopsd does not serve answers UnsupportedOperationException, cleanly
expect_error(lambda: c.acl_status(root + "/dir"), "UnsupportedOperationException")
expect_error(lambda: c.set_acl(root + "/dir", "user::rwx"), "UnsupportedOperationException")
expect_error(lambda: c.remove_acl(root + "/dir"), "UnsupportedOperationException")
expect_error(lambda: c.allow_snapshot(root + "/dir"), "UnsupportedOperationException")
expect_error(lambda: c.create_snapshot(root + "/dir", "s1"), "UnsupportedOperationException")
local = tempfile.mkdtemp(prefix="hopsd-hdfscli-")
c.upload(root + "/up", __file__)
c.download(root + "/up", os.path.join(local, "download.py"), overwrite=True)
assert open(os.path.join(local, "download.py"), "rb").read() == open(__file__, "rb").read()
shutil.rmtree(local)
assert c.delete(root + "/dir/renamed.txt") is True
assert c.delete(root + "/nothing") is False
expect_error(lambda: c.delete(root + "/dir"), "PathIsNotEmptyDirectoryException")
assert c.delete(root, recursive=True) is True
print("hdfscli ok")
