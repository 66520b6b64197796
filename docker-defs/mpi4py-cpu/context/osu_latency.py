#!/usr/bin/env python3
"""Ping-pong latency between ranks 0 and 1, printed as osu_latency prints it."""
import sys
import time

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
if comm.Get_size() != 2:
    if rank == 0:
        print("This test requires exactly two processes", file=sys.stderr)
    sys.exit(1)

max_size = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 16
if rank == 0:
    print("# OSU MPI Latency Test v7.2 (sifkit example)", flush=True)
    print("# Size          Latency (us)", flush=True)
size = 1
while size <= max_size:
    buf = np.zeros(size, dtype=np.uint8)
    iters, skip = (1000, 100) if size <= 8192 else (100, 10)
    comm.Barrier()
    for i in range(iters + skip):
        if i == skip:
            start = time.perf_counter()
        if rank == 0:
            comm.Send(buf, dest=1, tag=1)
            comm.Recv(buf, source=1, tag=1)
        else:
            comm.Recv(buf, source=0, tag=1)
            comm.Send(buf, dest=0, tag=1)
    elapsed = time.perf_counter() - start
    if rank == 0:
        # Flushed per line, as osu_latency does: output written after
        # MPI_Finalize may not reach the launcher.
        print(f"{size:<10d}{elapsed * 1e6 / (2 * iters):>18.2f}", flush=True)
    size *= 2

# Both ranks stay until rank 0 has written every line: a rank that leaves
# first can make the launcher close the job's output before the last line.
comm.Barrier()
sys.stdout.flush()
