"""ccssniff: see, decode and make the digital side of CCS charging."""

__version__ = "0.1.0"
