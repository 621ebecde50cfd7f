"""Shared neural-network modules: the decentralized actors and the attention critic."""
