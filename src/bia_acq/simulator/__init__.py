"""The simulated analyzer: plausible subjects over a virtual serial port."""
