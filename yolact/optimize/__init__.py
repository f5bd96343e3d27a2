"""Speed rewrites that keep the outputs: BatchNorm folding, stacked convs, Winograd and channels_last convs."""
