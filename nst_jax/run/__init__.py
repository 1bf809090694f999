"""The host engine: planning shapes and memory, inputs, colour control, the batch loop, checkpoints."""
