"""HdfsCLI (TokenClient: the key sent as `delegation=`) and fsspec (webhdfs://, token=) inside a project
with a project-scoped API key, on a cluster with secure auth: write, read, list, rename and delete in a
dataset of the project; the other project's data is refused (AccessControlException / 403).
Usage: URL HOST PORT PROJECT KEY FOREIGN_FILE."""
import sys

import fsspec
from hdfs import TokenClient
from hdfs.util import HdfsError

url, host, port, project, key, foreign = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
root = "/Projects/%s/Resources" % project

c = TokenClient(url, key)
c.makedirs(root + "/hdfscli")
c.write(root + "/hdfscli/a.txt", data=b"hello project", overwrite=True)
with c.read(root + "/hdfscli/a.txt") as r:
    assert r.read() == b"hello project"
assert c.list(root + "/hdfscli") == ["a.txt"]
c.rename(root + "/hdfscli/a.txt", root + "/hdfscli/b.txt")
assert c.status(root + "/hdfscli/b.txt")["owner"].startswith(project + "__"), c.status(root + "/hdfscli/b.txt")
try:
    with c.read(foreign) as r:
        r.read()
    raise AssertionError("read another project's file")
except HdfsError as e:
    assert "AccessControlException" in str(e) or getattr(e, "exception", None) == "AccessControlException", str(e)
c.delete(root + "/hdfscli", recursive=True)

fs = fsspec.filesystem("webhdfs", host=host, port=port, token=key, skip_instance_cache=True)
with fs.open(root + "/fsspec.bin", "wb") as f:
    f.write(b"x" * 100_000)
assert fs.cat(root + "/fsspec.bin") == b"x" * 100_000
assert fs.info(root + "/fsspec.bin")["size"] == 100_000
try:
    fs.cat(foreign)
    raise AssertionError("fsspec read another project's file")
except (PermissionError, OSError) as e:
    assert "Permission denied" in str(e) or "403" in str(e) or isinstance(e, PermissionError), repr(e)
fs.rm(root + "/fsspec.bin")
print("project key ok")
