"""The shipped NB201 test slice and the 54-cell sub-space it covers (shared by several tests)."""

from pathlib import Path

SLICE = Path(__file__).parent / "data" / "nb201_slice.csv"
SUB = {"op0": ("skip_connect", "nor_conv_1x1", "nor_conv_3x3"), "op1": ("none", "nor_conv_3x3"),
       "op2": ("nor_conv_3x3",), "op3": ("skip_connect", "avg_pool_3x3", "nor_conv_3x3"),
       "op4": ("none", "skip_connect", "nor_conv_3x3"), "op5": ("nor_conv_3x3",)}
