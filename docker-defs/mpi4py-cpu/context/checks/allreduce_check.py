#!/usr/bin/env python3
"""Allreduce, Bcast and Send/Recv over all ranks, with assertions on the results."""
import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()

send = np.full(1024, rank + 1, dtype=np.float64)
recv = np.empty_like(send)
comm.Allreduce(send, recv, op=MPI.SUM)
assert np.all(recv == size * (size + 1) / 2), recv[:4]

data = np.arange(16, dtype=np.int64) if rank == 0 else np.empty(16, dtype=np.int64)
comm.Bcast(data, root=0)
assert np.array_equal(data, np.arange(16)), data

if size > 1:
    if rank == 0:
        comm.Send(np.full(8, 42, dtype=np.int32), dest=1)
    elif rank == 1:
        got = np.empty(8, dtype=np.int32)
        comm.Recv(got, source=0)
        assert np.all(got == 42), got

comm.Barrier()
if rank == 0:
    print(f"allreduce_check: OK on {size} ranks (mpi4py {__import__('mpi4py').__version__})", flush=True)
