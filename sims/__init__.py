"""Plant simulators: pure, seeded, vectorised step functions, and a thin publisher."""
