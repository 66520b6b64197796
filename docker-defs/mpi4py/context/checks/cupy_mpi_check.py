#!/usr/bin/env python3
"""CuPy arrays through mpi4py on GPU buffers: Allreduce, Bcast and Send/Recv,
each result checked. Run with MPICH_GPU_SUPPORT_ENABLED=1 (GPU-aware MPI)."""
import cupy as cp
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
size = comm.Get_size()
cp.cuda.Device(rank % cp.cuda.runtime.getDeviceCount()).use()
n = 1 << 20

send = cp.full(n, rank + 1, dtype=cp.float64)
recv = cp.empty_like(send)
cp.cuda.get_current_stream().synchronize()
comm.Allreduce(send, recv, op=MPI.SUM)
assert cp.allclose(recv, size * (size + 1) / 2), "Allreduce gave a wrong sum"

buf = cp.arange(n, dtype=cp.float64) if rank == 0 else cp.zeros(n, dtype=cp.float64)
cp.cuda.get_current_stream().synchronize()
comm.Bcast(buf, root=0)
assert cp.allclose(buf, cp.arange(n, dtype=cp.float64)), "Bcast delivered wrong data"

if size >= 2:
    if rank == 0:
        out = cp.full(n, 7.0)
        cp.cuda.get_current_stream().synchronize()
        comm.Send(out, dest=1, tag=3)
    elif rank == 1:
        got = cp.empty(n, dtype=cp.float64)
        comm.Recv(got, source=0, tag=3)
        assert cp.allclose(got, 7.0), "Send/Recv delivered wrong data"

comm.Barrier()
if rank == 0:
    print(f"cupy_mpi_check: OK on {size} ranks", flush=True)
