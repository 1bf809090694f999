"""The independent PyTorch reference and the parity helpers, and writers of weight files in the real formats:
for tests, benchmarks and the parity notebook. Nothing in the package imports this."""
