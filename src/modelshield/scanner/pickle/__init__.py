"""The pickle analyzer: a symbolic interpreter over raw pickle opcodes.

Nothing in this package ever unpickles, imports or calls what it reads. :func:`analyze_pickles`
is the entry point for every handler that meets a pickle (raw files, PyTorch checkpoints,
joblib streams, object arrays in ``.npy`` files); :func:`looks_like_pickle` is the structural
check used to tell a pickle from other bytes.
"""

from modelshield.scanner.pickle.analyzer import analyze_pickles
from modelshield.scanner.pickle.sniff import looks_like_pickle

__all__ = ["analyze_pickles", "looks_like_pickle"]
