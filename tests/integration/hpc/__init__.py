"""Batch-queue backends: dialects on recorded output, and the real systems the tests start."""
