"""HdfsCLI, fsspec and pandas writing and reading files of several sizes as a non-superuser, each written
through one node and read back byte-identical through every node. Usage:
    sizes.py USER ROOT BIG_MB URL [URL...]
Small sizes (1 KiB, 5 MiB, 12 MiB) go through every client, the writing node turning round the list;
one file of BIG_MB MB (0: none) is written once with HdfsCLI (streamed) and read through every node.
pandas writes and reads an 8 MB frame over webhdfs:// (fsspec posts each chunk to one APPEND Location)."""
import hashlib
import io
import sys
from urllib.parse import urlparse

import fsspec
import pandas as pd
from hdfs import InsecureClient

user, root, big_mb, urls = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
KIB, MIB = 1024, 1024 * 1024
clients = [InsecureClient(u, user=user) for u in urls]


def fsspec_fs(url):
    u = urlparse(url)
    return fsspec.filesystem("webhdfs", host=u.hostname, port=u.port, user=user, skip_instance_cache=True)


fss = [fsspec_fs(u) for u in urls]


def pattern(n, seed):
    """n deterministic bytes: a 1 MiB random block, each MiB stamped with its index."""
    block = hashlib.sha256(b"%d" % seed).digest() * (MIB // 32)
    out = bytearray()
    i = 0
    while len(out) < n:
        piece = bytearray(block)
        piece[0:8] = i.to_bytes(8, "little")
        out += piece[: n - len(out)]
        i += 1
    return bytes(out)


def chunks(n, seed):
    """The same bytes as pattern(n, seed), as a generator of 1 MiB pieces (never all in memory)."""
    block = hashlib.sha256(b"%d" % seed).digest() * (MIB // 32)
    sent, i = 0, 0
    while sent < n:
        piece = bytearray(block)
        piece[0:8] = i.to_bytes(8, "little")
        piece = bytes(piece[: n - sent])
        yield piece
        sent += len(piece)
        i += 1


def digest_of_stream(reader):
    h = hashlib.sha256()
    size = 0
    for piece in reader:
        h.update(piece)
        size += len(piece)
    return h.hexdigest(), size


clients[0].makedirs(root)
for c in clients:
    assert c.status(root)["owner"] == user, "the test root belongs to " + user

sizes = [KIB, 5 * MIB, 12 * MIB]
turn = 0
for size in sizes:
    for kind in ("hdfscli", "fsspec"):
        w = turn % len(urls)
        turn += 1
        path = "%s/%s-%d" % (root, kind, size)
        data = pattern(size, size + turn)
        if kind == "hdfscli":
            clients[w].write(path, data=data, overwrite=True)
        else:
            with fss[w].open(path, "wb") as f:  # CREATE, then one APPEND Location for every chunk
                f.write(data)
        want = hashlib.sha256(data).hexdigest()
        for r, c in enumerate(clients):
            with c.read(path) as f:
                got = f.read()
            assert len(got) == size and hashlib.sha256(got).hexdigest() == want, (kind, size, w, r, len(got))
            assert fss[r].cat(path) == data, ("fsspec read", kind, size, w, r)
        assert clients[0].status(path)["owner"] == user

# pandas: to_csv of an 8 MB frame over webhdfs:// (chunks posted to one APPEND Location), read_csv back.
frame = pd.DataFrame({"k": range(400_000), "v": ["row-%012d" % i for i in range(400_000)]})
text = frame.to_csv(index=False).encode()
assert len(text) > 8_000_000, len(text)
for w, u in enumerate(urls[:2]):
    p = urlparse(u)
    url = "webhdfs://%s:%d%s/frame-%d.csv" % (p.hostname, p.port, root, w)
    frame.to_csv(url, index=False, storage_options={"user": user})
    for r in urls:
        q = urlparse(r)
        back = pd.read_csv("webhdfs://%s:%d%s/frame-%d.csv" % (q.hostname, q.port, root, w), storage_options={"user": user})
        assert back.equals(frame), (w, r)
    with clients[-1].read("%s/frame-%d.csv" % (root, w)) as f:
        assert f.read() == text

if big_mb > 0:
    size = big_mb * 1000 * 1000
    path = root + "/big.bin"
    want = hashlib.sha256()
    for piece in chunks(size, 300):
        want.update(piece)
    clients[0].write(path, data=chunks(size, 300), overwrite=True)
    assert clients[0].status(path)["length"] == size
    for r, c in enumerate(clients):
        with c.read(path, chunk_size=MIB) as reader:
            got, n = digest_of_stream(reader)
        assert n == size and got == want.hexdigest(), ("big", r, n)

print("sizes ok")
