# The GPU job of scripts/device/gpu-check.sh: what a task sees, and a small matrix product on its GPU.
import os
import sys
import time

print("CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
for k in ("HOPSD_JOB_ID", "HOPSD_RUN_ID", "HOPSD_NODE", "HOPSD_PROJECT", "HOPSD_USER"):
    print(f"{k}={os.environ.get(k, '<unset>')}", flush=True)
try:
    import torch
except Exception as e:  # the local rehearsal has no torch
    print(f"torch: not importable: {e}", flush=True)
    sys.exit(3)
print("torch", torch.__version__, "cuda available", torch.cuda.is_available(), flush=True)
print("device_count", torch.cuda.device_count(), flush=True)
name = torch.cuda.get_device_name(0)
print("device_name", name, flush=True)
a = torch.randn(4096, 4096, device="cuda", dtype=torch.float32)
b = torch.randn(4096, 4096, device="cuda", dtype=torch.float32)
torch.cuda.synchronize()
t = time.perf_counter()
c = a @ b
torch.cuda.synchronize()
dt = time.perf_counter() - t
ref = (a[:8].double() @ b.double())[:, :8]
err = (c[:8, :8].double() - ref).abs().max().item()
print(f"matmul 4096^3 fp32 on {c.device}: {dt * 1e3:.1f} ms, max abs err vs fp64 {err:.3e}", flush=True)
print("OK", flush=True)
