"""Neural-network modules of MAMT: actors, attention critic and the central module."""
