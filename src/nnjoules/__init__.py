"""nnjoules: where a neural network's energy goes on an Eyeriss-like accelerator."""
