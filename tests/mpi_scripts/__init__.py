"""Scripts that tests/test_mpi.py launches under mpiexec."""
