"""A fast, numpy-based FIT decoder for running activities."""
