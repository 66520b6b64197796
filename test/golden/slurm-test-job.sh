#!/bin/bash
#SBATCH --job-name=sifkit-test-4c86d2919233
#SBATCH --partition=debug
#SBATCH --nodes=1
#SBATCH --time=35
#SBATCH --output=/dev/null
#SBATCH --account=project_462000008
#SBATCH --time=00:20:00
# written by sifkit test: each check is one step; its output and exit status stay here
exec >>'/scratch/project_462000008/sif/.sifkit-slurm/test-lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-4c86d2919233-1/job.out' 2>&1
cd '/scratch/project_462000008/sif/.sifkit-slurm/test-lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-4c86d2919233-1'
cleanup() { docker ps -q --filter label=sifkit.slurm.workdir='/scratch/project_462000008/sif/.sifkit-slurm/test-lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-4c86d2919233-1' | xargs -r docker rm -f >/dev/null; }
trap 'kill $step 2>/dev/null; cleanup; exit 143' TERM INT
date +%s%3N > 'mpi4py-import.start'
timeout --signal=KILL 630 srun -N 1 -n 1 docker run --rm --init --network=none --shm-size=256m --label sifkit.slurm.workdir='/scratch/project_462000008/sif/.sifkit-slurm/test-lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-4c86d2919233-1' -v '/scratch/project_462000008/sif/.sifkit-slurm/test-lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-4c86d2919233-1':/myrun 'sha256:4c86d2919233' '/myrun/check-mpi4py-import.sh' > 'mpi4py-import.out' 2>&1 &
step=$!; wait $step; rc=$?
echo $rc > 'mpi4py-import.rc'
cleanup
date +%s%3N > 'mpi4py-import.end'
date +%s%3N > 'allreduce.start'
timeout --signal=KILL 630 srun -N 1 -n 1 docker run --rm --init --network=none --shm-size=256m --label sifkit.slurm.workdir='/scratch/project_462000008/sif/.sifkit-slurm/test-lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-4c86d2919233-1' -v '/scratch/project_462000008/sif/.sifkit-slurm/test-lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-4c86d2919233-1':/myrun 'sha256:4c86d2919233' '/myrun/check-allreduce.sh' > 'allreduce.out' 2>&1 &
step=$!; wait $step; rc=$?
echo $rc > 'allreduce.rc'
cleanup
date +%s%3N > 'allreduce.end'
date +%s%3N > 'pingpong.start'
timeout --signal=KILL 630 srun -N 1 -n 1 docker run --rm --init --network=none --shm-size=256m --label sifkit.slurm.workdir='/scratch/project_462000008/sif/.sifkit-slurm/test-lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-4c86d2919233-1' -v '/scratch/project_462000008/sif/.sifkit-slurm/test-lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-4c86d2919233-1':/myrun 'sha256:4c86d2919233' '/myrun/check-pingpong.sh' > 'pingpong.out' 2>&1 &
step=$!; wait $step; rc=$?
echo $rc > 'pingpong.rc'
cleanup
date +%s%3N > 'pingpong.end'
echo done > job.done
