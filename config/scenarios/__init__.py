"""Built-in simulator scenarios (YAML), installed as the package ``bia_acq.scenarios``."""
