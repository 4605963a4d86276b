"""Configuration that runs code: YAML object tags, instantiation targets, jsonpickle, skops.

Formats store configuration as text (YAML, JSON), and two kinds of loaders turn it into code:
YAML loaders that construct Python objects from tags (``!!python/object/apply:os.system``), and
libraries that read plain YAML or JSON and then import and call whatever the file names
(Hydra's ``_target_``, jsonargparse's ``class_path``, jsonpickle's ``py/reduce``, skops'
schema). The modules here analyse the parsed structure; none of them constructs, imports or
evaluates anything:

* :mod:`.yamlnodes` reads YAML into a node graph from PyYAML's parser events (bounded in
  nodes, depth and time; aliases are shared, never expanded) and resolves tags as the loader
  does;
* :mod:`.yamltags` reports the object-building tags, judged by the callable policy;
* :mod:`.targets` finds instantiation targets in a parsed document, resolves OmegaConf
  interpolation and lookup helpers, and judges each target by the per-framework allow tables
  (``data/config_targets*.toml``) and then the callable policy;
* :mod:`.jsonpickle` and :mod:`.skops` read the object graphs those libraries rebuild;
* :mod:`.analyse` runs them on a document and is what handlers call.
"""
