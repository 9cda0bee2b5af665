"""Built-in device profiles (YAML), installed as the package ``bia_acq.profiles``."""
