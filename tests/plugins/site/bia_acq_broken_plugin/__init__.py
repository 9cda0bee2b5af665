"""A plugin whose import fails, as one with a missing native library would."""

raise ImportError("libexample.so.1: cannot open shared object file")
