"""Network definitions of the learned methods."""
