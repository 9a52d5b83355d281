"""fsspec's WebHDFS filesystem and pandas over webhdfs://, against hopsd. Usage: HOST PORT ROOT."""
import os
import shutil
import sys
import tempfile

import fsspec
import pandas as pd

host, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fs = fsspec.filesystem("webhdfs", host=host, port=port, user="hopsd")

fs.mkdir(root + "/d")
assert fs.isdir(root + "/d")
with fs.open(root + "/d/a.bin", "wb") as f:  # CREATE of an empty file, then APPENDs to the Location
    f.write(b"x" * 10)
    f.write(b"y" * 5)
assert fs.cat(root + "/d/a.bin") == b"x" * 10 + b"y" * 5
with fs.open(root + "/d/a.bin", "rb") as f:
    f.seek(8)
    assert f.read(4) == b"xxyy"
fs.pipe(root + "/d/b.txt", b"pipe")
assert fs.cat(root + "/d/b.txt") == b"pipe"
# (fsspec's own "ab" mode never sets its upload Location — a client bug; its "wb" path covers APPEND.)
assert sorted(fs.ls(root + "/d", detail=False)) == [root + "/d/a.bin", root + "/d/b.txt"], fs.ls(root + "/d", detail=False)
info = fs.info(root + "/d/a.bin")
assert info["size"] == 15 and info["type"] == "file", info
assert fs.content_summary(root + "/d")["length"] == 19
assert fs.ukey(root + "/d/a.bin")["algorithm"] == "MD5-of-0MD5-of-512CRC32C"
assert fs.home_directory() == "/user/hopsd"
fs.mv(root + "/d/b.txt", root + "/d/c.txt")
assert not fs.exists(root + "/d/b.txt") and fs.exists(root + "/d/c.txt")
fs.chmod(root + "/d/c.txt", "600")  # fsspec passes mod through: an octal string, as WebHDFS wants
assert fs.info(root + "/d/c.txt")["permission"] == "600"
fs.set_replication(root + "/d/c.txt", 2)
assert fs.info(root + "/d/c.txt")["replication"] == 2
try:
    fs.cat(root + "/d/missing")
    raise AssertionError("expected FileNotFoundError")
except FileNotFoundError:
    pass

# writes that commit on close only (autocommit=False: a temp file, then a rename), copies, chown
f = fs.open(root + "/d/late.bin", "wb", autocommit=False)
f.write(b"late")
f.close()
assert not fs.exists(root + "/d/late.bin")
f.commit()
assert fs.cat(root + "/d/late.bin") == b"late"
fs.cp_file(root + "/d/a.bin", root + "/d/copy.bin")
assert fs.cat(root + "/d/copy.bin") == fs.cat(root + "/d/a.bin")
fs.chown(root + "/d/copy.bin", owner="alice", group="staff")
assert (fs.info(root + "/d/copy.bin")["owner"], fs.info(root + "/d/copy.bin")["group"]) == ("alice", "staff")
assert fs.modified(root + "/d/copy.bin") == fs.created(root + "/d/copy.bin")
# ranges, globs, find, du; put/get of local files
assert fs.cat_file(root + "/d/a.bin", start=9, end=11) == b"xy"
assert fs.head(root + "/d/a.bin", 3) == b"xxx" and fs.tail(root + "/d/a.bin", 2) == b"yy"
assert sorted(fs.glob(root + "/d/*.bin")) == [root + "/d/a.bin", root + "/d/copy.bin", root + "/d/late.bin"]
assert fs.find(root, withdirs=False) == sorted(fs.find(root, withdirs=False))
assert fs.du(root + "/d") == 15 + 4 + 4 + 15
local = tempfile.mkdtemp(prefix="hopsd-fsspec-")
with open(os.path.join(local, "in.bin"), "wb") as f:
    f.write(os.urandom(30000))
fs.put(os.path.join(local, "in.bin"), root + "/put/in.bin")
fs.get(root + "/put/in.bin", os.path.join(local, "out.bin"))
assert open(os.path.join(local, "in.bin"), "rb").read() == open(os.path.join(local, "out.bin"), "rb").read()
shutil.rmtree(local)
fs.makedirs(root + "/deep/er", exist_ok=True)
fs.makedirs(root + "/deep/er", exist_ok=True)
try:
    fs.makedirs(root + "/deep/er", exist_ok=False)
    raise AssertionError("expected FileExistsError")
except FileExistsError:
    pass
fs.rm_file(root + "/put/in.bin")
assert not fs.exists(root + "/put/in.bin")
try:
    fs.get_delegation_token()  # tokens are for users the cluster knows: a clean error, not a crash
    raise AssertionError("expected an error")
except (RuntimeError, ValueError, NotImplementedError) as e:
    assert "Unsupported" in str(e) or "token" in str(e).lower(), e

# pandas through webhdfs:// URLs
url = f"webhdfs://{host}:{port}{root}/frame.csv"
opts = {"user": "hopsd"}
pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_csv(url, index=False, storage_options=opts)
df = pd.read_csv(url, storage_options=opts)
assert df["a"].tolist() == [1, 2, 3] and df["b"].tolist() == ["x", "y", "z"], df

fs.rm(root + "/d/c.txt")
fs.rm(root, recursive=True)
assert not fs.exists(root)
print("fsspec ok")
