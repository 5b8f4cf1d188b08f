"""jepa-tui: train and study EPM-JEPA world models under distribution shift."""

__version__ = "0.1.0"
