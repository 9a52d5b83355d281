"""Written through one node, read through another: HdfsCLI and fsspec + pandas against two nodes of one
hopsd cluster. Usage: URL_WRITE URL_READ ROOT. Every read right after the write sees it (linearizable)."""
import sys
from urllib.parse import urlparse

import fsspec
import pandas as pd
from hdfs import InsecureClient

url_w, url_r, root = sys.argv[1], sys.argv[2], sys.argv[3]
w = InsecureClient(url_w, user="hopsd")
r = InsecureClient(url_r, user="hopsd")

# HdfsCLI: every write on one node, each read at once on the other
w.makedirs(root + "/d")
assert r.status(root + "/d")["type"] == "DIRECTORY"
for i in range(5):
    body = bytes([i]) * (1000 * i)
    w.write(root + "/d/f%d" % i, data=body)
    with r.read(root + "/d/f%d" % i) as f:
        assert f.read() == body, i
w.write(root + "/d/f1", data=b"+tail", append=True)
with r.read(root + "/d/f1") as f:
    assert f.read() == bytes([1]) * 1000 + b"+tail"
w.rename(root + "/d/f2", root + "/d/g2")
assert r.status(root + "/d/f2", strict=False) is None and r.status(root + "/d/g2")["length"] == 2000
w.set_permission(root + "/d/g2", "600")
assert r.status(root + "/d/g2")["permission"] == "600"
assert w.delete(root + "/d/g2") is True
assert r.status(root + "/d/g2", strict=False) is None
assert sorted(r.list(root + "/d")) == ["f0", "f1", "f3", "f4"]

# fsspec + pandas: to_csv through one node, read_csv through the other
opts = {"user": "hopsd"}
def url(base, path):
    u = urlparse(base)
    return f"webhdfs://{u.hostname}:{u.port}{path}"
frame = pd.DataFrame({"k": list(range(100)), "v": [f"row{i}" for i in range(100)]})
frame.to_csv(url(url_w, root + "/frame.csv"), index=False, storage_options=opts)
back = pd.read_csv(url(url_r, root + "/frame.csv"), storage_options=opts)
assert back.equals(frame), back
fw = fsspec.filesystem("webhdfs", host=urlparse(url_w).hostname, port=urlparse(url_w).port, user="hopsd")
fr = fsspec.filesystem("webhdfs", host=urlparse(url_r).hostname, port=urlparse(url_r).port, user="hopsd", skip_instance_cache=True)
fw.pipe(root + "/p.bin", b"piped")
assert fr.cat(root + "/p.bin") == b"piped"
fw.rm(root, recursive=True)
assert not fr.exists(root)
print("cross-node ok")
