"""What every test module shares: paths, a project factory, an in-memory registry."""
