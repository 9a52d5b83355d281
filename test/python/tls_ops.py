"""WebHDFS CREATE, APPEND and OPEN under --tls from the Python clients, trusting only the cluster CA:
HdfsCLI (a requests session verifying the CA) and fsspec + pandas (use_https, session_verify). Each file
is written through the first node and read back byte-identical through every node; the write Locations
are https (the datanode's data route). Usage: CA_FILE USER ROOT URL [URL...] (https URLs)."""
import hashlib
import os
import sys
from urllib.parse import urlparse

import fsspec
import pandas as pd
import requests
from hdfs import InsecureClient

ca, user, root, urls = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
MIB = 1024 * 1024


def session():
    s = requests.Session()
    s.verify = ca  # the cluster CA only: a certificate it did not issue fails the handshake
    return s


clients = [InsecureClient(u, user=user, session=session()) for u in urls]


def fsspec_fs(url):
    u = urlparse(url)
    return fsspec.filesystem(
        "webhdfs",
        host=u.hostname,
        port=u.port,
        user=user,
        use_https=True,
        session_verify=ca,
        skip_instance_cache=True,
    )


fss = [fsspec_fs(u) for u in urls]

# The Location step one answers is https.
w = clients[0]
# (HdfsCLI's session adds user.name itself.)
step = w._session.put(urls[0] + "/webhdfs/v1" + root + "/probe", params={"op": "CREATE", "noredirect": "true"})
assert step.status_code == 200, (step.status_code, step.text)
loc = step.json()["Location"]
assert loc.startswith("https://"), loc


def digest(b):
    return hashlib.sha256(b).hexdigest()


# HdfsCLI: CREATE (small: inline), APPEND past the inline threshold (into blocks), OPEN everywhere.
small = os.urandom(1000)
more = os.urandom(3 * MIB + 17)
w.write(root + "/hdfscli.bin", data=small, overwrite=True)
w.write(root + "/hdfscli.bin", data=more, append=True)
for c in clients:
    with c.read(root + "/hdfscli.bin") as f:
        assert digest(f.read()) == digest(small + more)

# fsspec: CREATE, then every 4 MiB chunk POSTed to the one APPEND Location (three chunks here).
data = os.urandom(10 * MIB + 5)
with fss[0].open(root + "/fsspec.bin", "wb") as f:
    for i in range(0, len(data), MIB):
        f.write(data[i : i + MIB])
for fs in fss:
    assert fs.info(root + "/fsspec.bin")["size"] == len(data)
    assert digest(fs.cat(root + "/fsspec.bin")) == digest(data)

# pandas over webhdfs:// with https.
frame = pd.DataFrame({"k": list(range(50_000)), "v": [f"row{i}" for i in range(50_000)]})
opts = {"user": user, "use_https": True, "session_verify": ca, "skip_instance_cache": True}
for i, url in enumerate(urls):
    u = urlparse(url)
    target = f"webhdfs://{u.hostname}:{u.port}{root}/frame.csv"
    if i == 0:
        frame.to_csv(target, index=False, storage_options=opts)
    pd.testing.assert_frame_equal(pd.read_csv(target, storage_options=opts), frame)

# Without the CA, the handshake fails: the clients really verify.
try:
    InsecureClient(urls[0], user=user).status(root)
    raise AssertionError("a client without the cluster CA got through")
except requests.exceptions.SSLError:
    pass
print("tls clients ok")
