"""Every op HdfsCLI supports, through its TokenClient (a WebHDFS delegation token sent as `delegation=` on
every request), as a user who is not the superuser, in its home directory, on a cluster with secure auth.
Usage: URL ROOT TOKEN USER GROUP (ROOT under /user/USER; USER is in GROUP, not in 'other')."""
import os
import shutil
import sys
import tempfile

from hdfs import InsecureClient, TokenClient
from hdfs.util import HdfsError

url, root, token, user, group = sys.argv[1:6]
c = TokenClient(url, token)


def expect_error(fn, exception):
    try:
        fn()
    except HdfsError as e:
        assert exception in str(e) or getattr(e, "exception", None) == exception, (exception, str(e), getattr(e, "exception", None))
        return
    raise AssertionError("expected " + exception)


assert c.resolve("rel/x") == "/user/%s/rel/x" % user  # the token says who we are: its owner's home
c.makedirs(root + "/dir", permission="750")
assert c.status(root + "/dir")["type"] == "DIRECTORY"
st = c.status(root + "/dir")
assert (st["permission"], st["owner"]) == ("750", user), st
c.write(root + "/dir/a.txt", data=b"hello hdfscli", overwrite=True)
c.write(root + "/dir/a.txt", data=b" + more", append=True)
with c.read(root + "/dir/a.txt") as r:
    assert r.read() == b"hello hdfscli + more"
with c.read(root + "/dir/a.txt", offset=6, length=7) as r:
    assert r.read() == b"hdfscli"
c.write(root + "/dir/gen.txt", data=(s.encode() for s in ["a", "b", "c"]))
with c.read(root + "/dir/gen.txt") as r:
    assert r.read() == b"abc"
expect_error(lambda: c.write(root + "/dir/a.txt", data=b"x"), "FileAlreadyExistsException")
assert sorted(c.list(root + "/dir")) == ["a.txt", "gen.txt"]
assert dict(c.list(root + "/dir", status=True))["a.txt"]["length"] == 20
assert list(c.walk(root))[0][0] == root
cs = c.content(root + "/dir")
assert cs["length"] == 23 and cs["fileCount"] == 2 and cs["directoryCount"] == 1, cs
assert c.checksum(root + "/dir/a.txt")["algorithm"] == "MD5-of-0MD5-of-512CRC32C"
c.rename(root + "/dir/gen.txt", root + "/dir/renamed.txt")
expect_error(lambda: c.rename(root + "/dir/nope", root + "/dir/x"), "")
c.set_replication(root + "/dir/a.txt", 2)
assert c.status(root + "/dir/a.txt")["replication"] == 2
c.set_permission(root + "/dir/a.txt", "640")
# Groups come from the user record: the owner may hand a file to a group it belongs to, not to another,
# and never to another owner.
c.set_owner(root + "/dir/a.txt", group=group)
assert c.status(root + "/dir/a.txt")["group"] == group
expect_error(lambda: c.set_owner(root + "/dir/a.txt", group="supergroup"), "AccessControlException")
expect_error(lambda: c.set_owner(root + "/dir/a.txt", owner="admin"), "AccessControlException")
c.set_times(root + "/dir/a.txt", access_time=1000, modification_time=2000)
st = c.status(root + "/dir/a.txt")
assert (st["modificationTime"], st["accessTime"]) == (2000, 1000), st
assert c.status(root + "/missing", strict=False) is None
# Outside its home the user is a user, not the superuser.
expect_error(lambda: c.makedirs("/etc/hopsd-token-test"), "AccessControlException")
expect_error(lambda: c.write("/outside.txt", data=b"x"), "AccessControlException")
# Simple auth is off: the same request as user.name is refused (401: HdfsCLI says "Authentication failure").
expect_error(lambda: InsecureClient(url, user="hopsd").list("/"), "Authentication failure")
c.write(root + "/dir/lines.txt", data="uno\ndos\ntres\n", encoding="utf-8", permission="640", replication=2)
with c.read(root + "/dir/lines.txt", encoding="utf-8", delimiter="\n") as r:
    assert [l for l in r if l] == ["uno", "dos", "tres"]
with c.read(root + "/dir/lines.txt", chunk_size=4) as r:
    assert b"".join(r) == b"uno\ndos\ntres\n"
for i in range(3):
    c.write(root + "/parts/part-r-%05d" % i, data=("p%d" % i).encode())
c.write(root + "/parts/_SUCCESS", data=b"")
assert sorted(c.parts(root + "/parts")) == ["part-r-00000", "part-r-00001", "part-r-00002"]
walked = list(c.walk(root, depth=1, status=True))
assert sorted(name for name, _ in walked[0][1]) == ["dir", "parts"], walked
local = tempfile.mkdtemp(prefix="hopsd-hdfscli-token-")
os.makedirs(os.path.join(local, "tree", "sub"))
for name, body in [("a.bin", os.urandom(5000)), ("sub/b.bin", os.urandom(200000)), ("sub/c.bin", b"")]:
    with open(os.path.join(local, "tree", name), "wb") as f:
        f.write(body)
c.upload(root + "/tree", os.path.join(local, "tree"), n_threads=3)
c.download(root + "/tree", os.path.join(local, "back"), n_threads=3)
for name in ["a.bin", "sub/b.bin", "sub/c.bin"]:
    assert open(os.path.join(local, "tree", name), "rb").read() == open(os.path.join(local, "back", name), "rb").read(), name
shutil.rmtree(local)
expect_error(lambda: c.acl_status(root + "/dir"), "UnsupportedOperationException")
expect_error(lambda: c.allow_snapshot(root + "/dir"), "UnsupportedOperationException")
assert c.delete(root + "/dir/renamed.txt") is True
assert c.delete(root + "/nothing") is False
expect_error(lambda: c.delete(root + "/dir"), "PathIsNotEmptyDirectoryException")
assert c.delete(root, recursive=True) is True
print("hdfscli token ok")
