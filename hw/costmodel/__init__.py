"""hardyt.hw.costmodel: every candidate core's cost, from synthesis runs and a model fitted to them."""
