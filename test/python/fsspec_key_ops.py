"""fsspec and pandas over webhdfs:// with an API key, as a user who is not the superuser, on a cluster
with secure auth: a 12 MiB file through fsspec (`token=` carries the key as WebHDFS `delegation=`; the
file goes up as 4 MiB APPENDs to one Location), an 8 MB frame through pandas to_csv/read_csv with HTTP
Basic (the key as the password), and a delegation token fsspec fetches with the key. Byte-identical.
Usage: HOST PORT ROOT KEY USER."""
import hashlib
import os
import sys

import fsspec
import numpy as np
import pandas as pd
import requests

# Say what the server answered when a request fails (requests' message has the status only).
_raise = requests.Response.raise_for_status


def _raise_with_body(self):
    try:
        _raise(self)
    except requests.HTTPError as e:
        raise requests.HTTPError(f"{e} -- {self.text[:300]}", response=self) from None


requests.Response.raise_for_status = _raise_with_body

host, port, root, key, user = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

fs = fsspec.filesystem("webhdfs", host=host, port=port, token=key, skip_instance_cache=True)
assert fs.home_directory() == "/user/" + user
data = os.urandom(12 * 1024 * 1024)
with fs.open(root + "/big.bin", "wb") as f:
    for i in range(0, len(data), 1 << 20):  # written in 1 MiB pieces; fsspec posts 4 MiB APPENDs
        f.write(data[i : i + (1 << 20)])
info = fs.info(root + "/big.bin")
assert info["size"] == len(data) and info["owner"] == user, info
back = fs.cat(root + "/big.bin")
assert hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest(), (len(back), len(data))
assert fs.cat_file(root + "/big.bin", start=5_000_000, end=5_000_100) == data[5_000_000:5_000_100]

# pandas: an 8 MB frame, written and read back with HTTP Basic (user + the key as password)
rng = np.random.default_rng(7)
n = 270_000  # about 8.4 MB of CSV
frame = pd.DataFrame({"id": np.arange(n), "x": rng.random(n), "label": rng.choice(["alpha", "beta", "gamma"], n)})
url = f"webhdfs://{host}:{port}{root}/frame.csv"
opts = {"user": user, "password": key, "skip_instance_cache": True}
frame.to_csv(url, index=False, storage_options=opts)
size = fs.info(root + "/frame.csv")["size"]
assert size >= 8_000_000, size
local_csv = frame.to_csv(index=False).encode()
assert fs.cat(root + "/frame.csv") == local_csv
read = pd.read_csv(url, storage_options=opts)
pd.testing.assert_frame_equal(read, frame)

# a delegation token fetched with the key, then used alone (what a job handed a token does)
token = fsspec.filesystem("webhdfs", host=host, port=port, user=user, password=key, skip_instance_cache=True).get_delegation_token()
tfs = fsspec.filesystem("webhdfs", host=host, port=port, token=token, skip_instance_cache=True)
assert tfs.cat(root + "/big.bin") == data
print("fsspec key ok")
