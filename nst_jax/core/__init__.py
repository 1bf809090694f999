"""Pure JAX: the network, the losses, the objective, the optimisers and the compiled chunk of steps. No IO, no
`Config`: settings arrive as values (`objective.LossSpec`, arrays)."""
