"""The process settings both sides of a vila-vs-PyTorch benchmark run under (REFERENCE.md
section 7): passive OpenMP waiting, OpenBLAS's thread timeout, and OpenBLAS's real kernels
(OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset for the benchmark processes only)."""
import os


def tuned_env(threads=None):
    e = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OPENBLAS_THREAD_TIMEOUT="4")
    e.pop("OPENBLAS_CORETYPE", None)
    e.pop("OPENBLAS_L2_SIZE", None)
    if threads is not None:
        e["OMP_NUM_THREADS"] = str(threads)
    return e
