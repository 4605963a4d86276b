"""The pickle analyzer: a symbolic interpreter over raw pickle opcodes.

Nothing in this package ever unpickles, imports or calls what it reads.
:func:`.analyzer.analyze_pickles` is the entry point for every handler that meets a pickle (raw
files, PyTorch checkpoints, joblib streams, object arrays in ``.npy`` files);
:func:`.sniff.looks_like_pickle` is the structural check that tells a pickle from other bytes.
The package itself imports none of its modules, so that format detection can use the sniffer
without loading the interpreter (which imports the scan context, which imports detection).
"""
