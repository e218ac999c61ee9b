"""Shared pytest setup: quiet TensorFlow and make tests importable from a clean clone."""

import os

# Set before TensorFlow is imported anywhere so its C++ start-up chatter stays out of test logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
