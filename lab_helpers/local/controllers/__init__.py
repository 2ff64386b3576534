"""Control loops of the local target, one module per real controller they stand in for."""
