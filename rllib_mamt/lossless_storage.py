"""The narrowest numpy dtype that stores observation values without loss.

Paper-scale replay buffers are large: Pursuit's 8 agents x 147 values, as
float32 for o and o', take 9.4 KB per joint row, 9.4 GB for Table 3's
1,000,000 rows. Many observations are small integers (Pursuit's grid counts)
or otherwise exactly representable in fewer bits, so the joint buffer keeps
each observation column in the narrowest of ``STORAGE_DTYPES`` that holds
every value written so far exactly, widening a column once when a value needs
it. Reads convert back to float32, so what the learner sees is bit-identical.
"""

import numpy as np

STORAGE_DTYPES = (np.dtype(np.uint8), np.dtype(np.float16), np.dtype(np.float32))


def _holds_exactly(values: np.ndarray, dtype: np.dtype) -> bool:
    if dtype == np.float32:
        return True
    if values.size == 0:
        return True
    if dtype == np.uint8:
        if not (values.min() >= 0 and values.max() <= 255):
            return False
        return bool(np.array_equal(np.floor(values), values))
    return bool(np.array_equal(values.astype(dtype).astype(np.float32), values))


def narrowest_lossless_dtype(values: np.ndarray, at_least: np.dtype) -> np.dtype:
    """The first dtype of ``STORAGE_DTYPES``, from ``at_least`` on, that stores
    every float32 value of ``values`` exactly (non-finite values: float32)."""
    values = np.asarray(values, np.float32)
    start = STORAGE_DTYPES.index(np.dtype(at_least))
    for dtype in STORAGE_DTYPES[start:]:
        if _holds_exactly(values, dtype):
            return dtype
    return STORAGE_DTYPES[-1]
