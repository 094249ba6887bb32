"""cvkit's tests: one folder per package, files named after the modules they test."""
