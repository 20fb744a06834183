"""fpufuzz: check patches to the x86 FPU lazy-restore state machine against a reference oracle.

The public surface is small; everything else is internal and may change.
"""

from fpufuzz.config import Config
from fpufuzz.errors import CorpusFormatError, FpufuzzError, IllegalStep, InvalidVariant, UnknownVariant
from fpufuzz.ops import Model, Step
from fpufuzz.oracle import DIAGNOSTICS, VIOLATIONS, Finding
from fpufuzz.variant import Variant, new

__version__ = "0.1.0"
MODEL_VERSION = "linux-v6.5-rc7/1"

__all__ = [
    "Config", "CorpusFormatError", "DIAGNOSTICS", "Finding", "FpufuzzError", "IllegalStep", "InvalidVariant",
    "MODEL_VERSION", "Model", "Step", "UnknownVariant", "VIOLATIONS", "Variant", "new",
]
