"""The paper's environments, registered with RLlib by name (see ``registry``)."""
