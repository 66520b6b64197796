#!/bin/bash
#SBATCH --job-name=sifkit-convert-mpi4py-cpu
#SBATCH --array=0-1
#SBATCH --output=/dev/null
#SBATCH --ntasks=1
#SBATCH --partition=small
#SBATCH --account=project_462000008
#SBATCH --time=30
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --qos=normal
#SBATCH --mail-type=FAIL
# written by sifkit release --on slurm: one task per variant, docker archive -> SIF
set -euo pipefail
unset SIFKIT_SIGNING_KEY SIFKIT_TESTED_KEY
exec >>'/scratch/project_462000008/sif/.sifkit-slurm/logs/convert-1-'"$SLURM_ARRAY_TASK_ID"'.out' 2>&1
case "${SLURM_ARRAY_TASK_ID:?not an array task}" in
  0) archive='/scratch/project_462000008/sif/lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-dockerhash-4c86d2919233.tar'; sif='/scratch/project_462000008/sif/lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-dockerhash-4c86d2919233.sif' ;;
  1) archive='/scratch/project_462000008/sif/lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-dockerhash-0123456789ab.tar'; sif='/scratch/project_462000008/sif/lumi-mpi4py-cpu-python-3.11-mpi4py-3.1.4-conda-mpi4py-dockerhash-0123456789ab.sif' ;;
  *) echo "no task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;
esac
exec '/usr/bin/node' '/opt/sifkit'\''s/dist/src/cli/main.js' convert "docker-archive:$archive" -o "$sif" --processors "${SLURM_CPUS_PER_TASK:-1}"
